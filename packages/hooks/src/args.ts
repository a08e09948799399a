import { parseArgs } from 'node:util';
import { describeUntrusted } from '@devstack/core';
import { COMMAND_HELP, HELP, commandHelp } from './help.js';

interface CommandFlags {
  strings: readonly string[];
  booleans?: readonly string[];
  /** Repeatable KEY=VALUE flags. */
  pairs?: readonly string[];
  required: readonly string[];
}

const KUBE = ['namespace', 'kubeconfig', 'request-timeout', 'max-response-size'] as const;

export const COMMANDS: Readonly<Record<string, CommandFlags>> = Object.freeze({
  'ingressroute add': { strings: ['name', 'host', 'key', 'service', 'port', 'traefik', 'api-group', 'key-name', 'priority', 'scheme', ...KUBE], booleans: ['create'], required: ['name', 'host', 'key', 'service'] },
  'ingressroute remove': { strings: ['name', 'key', 'api-group', ...KUBE], required: ['name', 'key'] },
  'secret clone': { strings: ['from', 'to', 'key', 'service', 'ttl', ...KUBE], pairs: ['set'], required: ['from', 'to', 'key'] },
  'secret update': { strings: ['name', ...KUBE], pairs: ['set'], required: ['name', 'set'] },
  'sqs create': { strings: ['queue', 'key', 'endpoint', 'region', 'attributes', 'secret', 'secret-key', ...KUBE], required: ['queue', 'key'] },
  'sqs delete': { strings: ['queue', 'key', 'endpoint', 'region', 'request-timeout'], required: ['queue', 'key'] },
  'sns subscribe': { strings: ['topic', 'queue', 'key', 'key-name', 'endpoint', 'region', 'attributes', 'secret', 'secret-key', ...KUBE], required: ['topic', 'queue', 'key'] },
  'sns unsubscribe': { strings: ['topic', 'queue', 'key', 'endpoint', 'region', 'request-timeout'], required: ['topic', 'queue', 'key'] },
  'sns create': { strings: ['topic', 'key', 'endpoint', 'region', 'attributes', 'secret', 'secret-key', ...KUBE], required: ['topic', 'key'] },
  'sns delete': { strings: ['topic', 'key', 'endpoint', 'region', 'request-timeout'], required: ['topic', 'key'] },
  'postgres create': { strings: ['database', 'key', 'template', 'owner', 'secret', 'secret-key', ...KUBE], required: ['database', 'key'] },
  'postgres drop': { strings: ['database', 'key', 'request-timeout'], required: ['database', 'key'] },
});

export interface Invocation {
  command: string;
  /** Flag values, from the command line or DEVSTACK_<FLAG>. */
  values: Record<string, string | undefined>;
  booleans: Record<string, boolean>;
  pairs: Record<string, Record<string, string>>;
}

export type Parsed = { kind: 'help'; text: string } | { kind: 'version' } | { kind: 'error'; command?: string; problems: string[] } | { kind: 'run'; invocation: Invocation };

export function envName(flag: string): string {
  return `DEVSTACK_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** The command line of one command; every problem is reported, one line each. */
export function parseCommandLine(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Parsed {
  const [group, action] = argv;
  if (group === undefined || group === '-h' || group === '--help') return { kind: 'help', text: HELP };
  if (group === '-v' || group === '--version') return { kind: 'version' };
  const command = `${group} ${action ?? ''}`.trim();
  const flags = COMMANDS[command];
  if (flags === undefined) {
    if (action === '--help' || action === '-h') return { kind: 'help', text: HELP };
    return { kind: 'error', problems: [`unknown command ${describeUntrusted(command)}: one of ${Object.keys(COMMANDS).join(', ')}`] };
  }
  const known = new Map<string, 'string' | 'boolean' | 'pairs'>([
    ...flags.strings.map((f) => [f, 'string'] as const),
    ...(flags.booleans ?? []).map((f) => [f, 'boolean'] as const),
    ...(flags.pairs ?? []).map((f) => [f, 'pairs'] as const),
  ]);
  // Not strict: node's own errors quote the argument (`Unexpected argument 'Hunter2'` for a stray
  // space in --set KEY= VALUE), and any argument may be a secret. Problems name positions instead.
  const { tokens } = parseArgs({
    args: argv.slice(2),
    strict: false,
    allowPositionals: true,
    tokens: true,
    options: {
      ...Object.fromEntries([...known].map(([f, kind]) => [f, kind === 'boolean' ? { type: 'boolean' as const } : { type: 'string' as const, multiple: kind === 'pairs' }])),
      help: { type: 'boolean', short: 'h' },
    },
  });
  const raw: Record<string, string | true | string[] | undefined> = {};
  const positions: Record<string, number[]> = {};
  const argProblems: string[] = [];
  let previous: string | undefined;
  for (const token of tokens) {
    // 1-based, counting the command's two words: what a reader counts on the command line.
    const at = token.index + 3;
    if (token.kind === 'option-terminator') {
      argProblems.push(`argument ${at}: '--' is not expected here`);
      continue;
    }
    if (token.kind === 'positional') {
      argProblems.push(`unexpected argument ${at}${previous === undefined ? '' : ` (after --${previous}: a value without a flag; a space after '='?)`}`);
      continue;
    }
    const kind = token.name === 'help' ? 'boolean' : known.get(token.name);
    previous = kind === undefined ? undefined : token.name;
    if (kind === undefined) {
      argProblems.push(`unknown flag at argument ${at} (flags of ${command}: ${[...known.keys()].map((f) => `--${f}`).join(', ')})`);
      continue;
    }
    if (kind === 'boolean') {
      if (token.value !== undefined) argProblems.push(`--${token.name} (argument ${at}) takes no value`);
      else raw[token.name] = true;
      continue;
    }
    if (token.value === undefined) {
      argProblems.push(`--${token.name} (argument ${at}): a value is required`);
      continue;
    }
    if (!token.inlineValue && token.value.startsWith('-')) {
      argProblems.push(`--${token.name} (argument ${at}): the next argument starts with '-' (write --${token.name}=VALUE if that is the value)`);
      continue;
    }
    if (kind === 'pairs') {
      ((raw[token.name] as string[] | undefined) ?? (raw[token.name] = [])).push(token.value);
      (positions[token.name] ??= []).push(token.inlineValue ? at : at + 1);
    } else raw[token.name] = token.value;
  }
  if (raw['help']) return { kind: 'help', text: commandHelp(command) };

  const problems: string[] = [...argProblems];
  const values: Record<string, string | undefined> = {};
  for (const flag of flags.strings) {
    const v = raw[flag];
    const e = env[envName(flag)];
    values[flag] = typeof v === 'string' ? v : e === undefined || e === '' ? undefined : e;
  }
  const booleans: Record<string, boolean> = {};
  for (const flag of flags.booleans ?? []) booleans[flag] = raw[flag] === true;
  const pairs: Record<string, Record<string, string>> = {};
  for (const flag of flags.pairs ?? []) {
    const out: Record<string, string> = {};
    ((raw[flag] as string[] | undefined) ?? []).forEach((pair, i) => {
      const eq = pair.indexOf('=');
      // The value may be a secret: only the part before '=' is ever shown.
      if (eq <= 0) problems.push(`--${flag} (argument ${positions[flag]![i]}): expected KEY=VALUE, got ${eq === 0 ? 'an empty KEY' : "a value without '='"}`);
      else out[pair.slice(0, eq)] = pair.slice(eq + 1);
    });
    pairs[flag] = out;
  }
  for (const flag of flags.required) {
    const given = flags.pairs?.includes(flag) ? Object.keys(pairs[flag] ?? {}).length > 0 || raw[flag] !== undefined : values[flag] !== undefined;
    if (!given) problems.push(`--${flag}${flags.pairs?.includes(flag) ? '' : ` (${envName(flag)})`}: required`);
  }
  if (problems.length > 0) return { kind: 'error', command, problems };
  return { kind: 'run', invocation: { command, values, booleans, pairs } };
}

export { COMMAND_HELP };

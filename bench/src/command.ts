/*
 * What every bench command does around its run: the options or the usage, no child process left
 * behind however the command ends, progress on stderr so that stdout holds the Markdown report
 * only, and every measurement as JSON under bench/results.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAll } from './processes.ts';

/** Parses the command line or exits: 2 on a bad option, 0 after printing `help` for --help. */
export function startCommand<O>(name: string, parse: (argv: string[]) => O | 'help', help: string): { options: O; log: (line: string) => void } {
  let options: O | 'help';
  try {
    options = parse(process.argv.slice(2));
  } catch (error) {
    console.error(`${name}: ${(error as Error).message}`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(help);
    process.exit(0);
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  process.on('exit', killAll);
  return { options, log: (line) => console.error(`${name}: ${line}`) };
}

export interface CommandOutput {
  /** --out, or bench/results when unset. */
  out: string | undefined;
  /** Put before the run's start time in the file name. */
  prefix: string;
  startedAt: string;
  json: unknown;
  report: () => string;
}

/** The JSON file is written before the report is rendered, so a report that fails loses no measurement. */
export function finishCommand(log: (line: string) => void, o: CommandOutput): void {
  const dir = o.out ?? fileURLToPath(new URL('../results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${o.prefix}${o.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(o.json, null, 2)}\n`);
  process.stdout.write(`${o.report()}\n`);
  log(`results written to ${file}`);
}

import type { KubeObject } from './types.js';
import { badRequest } from './status.js';

type Requirement =
  | { key: string; op: 'exists' | '!' }
  | { key: string; op: '=' | '!='; value: string }
  | { key: string; op: 'in' | 'notin'; values: Set<string> }
  | { key: string; op: 'gt' | 'lt'; value: number };

export type Matcher = (object: KubeObject) => boolean;

const everything: Matcher = () => true;

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Splits on commas outside parentheses: `a in (x,y),b` is two requirements. */
function split(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim());
}

function checkKey(key: string, whole: string): string {
  if (!KEY.test(key)) throw badRequest(`unable to parse requirement: invalid label key "${key}" in "${whole}"`);
  return key;
}

function checkValue(value: string, whole: string): string {
  if (!VALUE.test(value)) throw badRequest(`unable to parse requirement: invalid label value "${value}" in "${whole}"`);
  return value;
}

function parseRequirement(text: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(text);
  if (set) {
    const values = set[3]!.split(',').map((v) => checkValue(v.trim(), text));
    return { key: checkKey(set[1]!, text), op: set[2] as 'in' | 'notin', values: new Set(values) };
  }
  const compare = /^([^=!<>\s]+)\s*(==|!=|=|<|>)\s*(.*)$/.exec(text);
  if (compare) {
    const key = checkKey(compare[1]!, text);
    const raw = compare[3]!.trim();
    if (compare[2] === '<' || compare[2] === '>') {
      const value = Number.parseInt(raw, 10);
      if (!/^-?\d+$/.test(raw)) throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: "${text}"`);
      return { key, op: compare[2] === '<' ? 'lt' : 'gt', value };
    }
    return { key, op: compare[2] === '!=' ? '!=' : '=', value: checkValue(raw, text) };
  }
  if (text.startsWith('!')) return { key: checkKey(text.slice(1).trim(), text), op: '!' };
  return { key: checkKey(text, text), op: 'exists' };
}

function test(req: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, req.key);
  const value = labels[req.key];
  switch (req.op) {
    case 'exists':
      return has;
    case '!':
      return !has;
    case '=':
      return has && value === req.value;
    // As the real server: inequality and `notin` also match objects without the label.
    case '!=':
      return !has || value !== req.value;
    case 'in':
      return has && req.values.has(value!);
    case 'notin':
      return !has || !req.values.has(value!);
    case 'gt':
    case 'lt': {
      if (!has || !/^-?\d+$/.test(value!)) return false;
      const n = Number.parseInt(value!, 10);
      return req.op === 'gt' ? n > req.value : n < req.value;
    }
  }
}

/** Parses a label selector in the API's string form; an empty one selects everything. */
export function parseLabelSelector(selector: string | null | undefined): Matcher {
  if (!selector || selector.trim() === '') return everything;
  const requirements = split(selector).map((text) => {
    if (text === '') throw badRequest(`unable to parse requirement: empty requirement in "${selector}"`);
    return parseRequirement(text);
  });
  return (object) => {
    const labels = object.metadata?.labels ?? {};
    return requirements.every((r) => test(r, labels));
  };
}

const FIELDS: Record<string, (o: KubeObject) => string> = {
  'metadata.name': (o) => o.metadata?.name ?? '',
  'metadata.namespace': (o) => o.metadata?.namespace ?? '',
};

/** Extra fields the real server indexes for some kinds. */
const KIND_FIELDS: Record<string, Record<string, (o: KubeObject) => string>> = {
  Secret: { type: (o) => String(o.type ?? '') },
  Namespace: { 'status.phase': (o) => String((o.status as { phase?: string } | undefined)?.phase ?? '') },
  EndpointSlice: { addressType: (o) => String(o.addressType ?? '') },
};

/** Parses a field selector: `=`, `==` and `!=` on the fields the real server supports for the kind. */
export function parseFieldSelector(selector: string | null | undefined, kind: string): Matcher {
  if (!selector || selector.trim() === '') return everything;
  const tests = selector.split(',').map((text) => {
    const m = /^([^=!\s]+)\s*(==|!=|=)\s*(.*)$/.exec(text.trim());
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${text}'`);
    const field = m[1]!;
    const read = FIELDS[field] ?? KIND_FIELDS[kind]?.[field];
    if (!read) throw badRequest(`field label not supported: ${field}`);
    const value = m[3]!;
    const negate = m[2] === '!=';
    return (o: KubeObject) => (read(o) === value) !== negate;
  });
  return (object) => tests.every((t) => t(object));
}

/*
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --cpu-prof DIR`): the
 * functions with the most self time, the most inclusive time, and time by origin (the sidecar's
 * own code, @devstack packages, undici, prom-client, Node internals, GC). Usage:
 *   node bench/src/profile-summary.ts FILE.cpuprofile [--top N]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Time not idle: what the process spent working. */
  busyMs: number;
  self: Row[];
  inclusive: Row[];
  origins: Row[];
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/packages\//, 'packages/');
}

function label(f: CallFrame): string {
  const where = f.url ? ` ${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where}`;
}

export function origin(f: CallFrame): string {
  const u = f.url;
  if (!u) return f.functionName.startsWith('(') ? f.functionName : '(native/builtin)';
  if (u.includes('/packages/sidecar/')) return '@devstack/sidecar';
  if (u.includes('/packages/core/')) return '@devstack/core';
  if (u.includes('/packages/registry-file/')) return '@devstack/registry-file';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return m[1]!;
  if (u.startsWith('node:')) {
    const mod = u.slice(5).replace(/^internal\//, '');
    return `node:${mod.split('/').slice(0, 2).join('/')}`;
  }
  return shortUrl(u);
}

function top(map: Map<string, number>, totalMs: number, n: number): Row[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({ name, ms, pct: (ms / totalMs) * 100 }));
}

export function summarize(profile: Profile, n = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  // Sample i took timeDeltas[i + 1] (the next delta), the common reading of V8's format.
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    selfMs.set(profile.samples[i]!, (selfMs.get(profile.samples[i]!) ?? 0) + dt);
  }
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const self = new Map<string, number>();
  const origins = new Map<string, number>();
  let idle = 0;
  for (const [id, ms] of selfMs) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') idle += ms;
    self.set(label(f), (self.get(label(f)) ?? 0) + ms);
    origins.set(origin(f), (origins.get(origin(f)) ?? 0) + ms);
  }
  // Inclusive time: every function on a sample's stack, once per stack even when recursive.
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const inclusive = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(byId.get(at)!.callFrame);
      if (name.startsWith('(root)') || seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
    }
  }
  const busyMs = totalMs - idle;
  self.delete('(idle)');
  origins.delete('(idle)');
  inclusive.delete('(idle)');
  return { totalMs, busyMs, self: top(self, busyMs, n), inclusive: top(inclusive, busyMs, n), origins: top(origins, busyMs, n) };
}

function table(title: string, rows: Row[]): string {
  const lines = [`### ${title}`, '', '| % of busy | ms | function |', '|--:|--:|---|'];
  for (const r of rows) lines.push(`| ${r.pct.toFixed(1)} | ${r.ms.toFixed(0)} | \`${r.name}\` |`);
  return lines.join('\n');
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/src/profile-summary.ts FILE.cpuprofile [--top N]');
    process.exit(2);
  }
  const n = Number(process.argv[process.argv.indexOf('--top') + 1]) || 25;
  const s = summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile, n);
  console.log(`Profile ${file}: ${(s.totalMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(1)} s (${((s.busyMs / s.totalMs) * 100).toFixed(0)}%)\n`);
  console.log(table('Time by origin (self time)', s.origins), '\n');
  console.log(table('Self time', s.self), '\n');
  console.log(table('Inclusive time', s.inclusive));
}

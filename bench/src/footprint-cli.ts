/*
 * `npm run footprint`: the sidecar's idle and peak memory and its cost under each runtime tuning
 * (see footprint.ts). Markdown to stdout, progress to stderr, every run as JSON in
 * bench/results/footprint-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FOOTPRINT_HELP, parseFootprintOptions } from './footprint-options.ts';
import { footprintMarkdown, summarizeFootprint } from './footprint-report.ts';
import { runFootprint } from './footprint.ts';
import { killAll } from './processes.ts';

let options;
try {
  options = parseFootprintOptions(process.argv.slice(2));
} catch (error) {
  console.error(`footprint: ${(error as Error).message}`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(FOOTPRINT_HELP);
  process.exit(0);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (line: string) => console.error(`footprint: ${line}`);
const result = await runFootprint(options, log);
const summary = summarizeFootprint(result.runs, options.variants, options.scenarios);
const dir = options.out ?? fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = join(dir, `footprint-${result.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ ...result, summary }, null, 2)}\n`);
process.stdout.write(`${footprintMarkdown(result, summary)}\n`);
log(`results written to ${file}`);

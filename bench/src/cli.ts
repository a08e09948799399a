/*
 * `npm run bench`: runs the suite, prints the Markdown report to stdout (progress goes to stderr)
 * and writes every measurement as JSON to bench/results/<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELP, parseOptions } from './options.ts';
import { killAll } from './processes.ts';
import { markdown } from './report.ts';
import { runSuite } from './suite.ts';

let options;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(HELP);
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (line: string) => console.error(`bench: ${line}`);
const result = await runSuite(options, log);
const dir = options.out ?? fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = join(dir, `${result.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${markdown(result)}\n`);
log(`results written to ${file}`);

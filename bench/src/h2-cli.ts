/*
 * `npm run bench:h2` (in bench/: `npm run h2`): the HTTP/2 and gRPC suite. Prints the Markdown
 * report to stdout (progress to stderr) and writes every measurement as JSON to
 * bench/results/h2-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { H2_HELP, parseH2Options } from './h2-options.ts';
import { h2Markdown } from './h2-report.ts';
import { runH2Suite } from './h2-suite.ts';
import { killAll } from './processes.ts';

let options;
try {
  options = parseH2Options(process.argv.slice(2));
} catch (error) {
  console.error(`bench:h2: ${(error as Error).message}`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(H2_HELP);
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (line: string) => console.error(`bench:h2: ${line}`);
const result = await runH2Suite(options, log);
const dir = options.out ?? fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = join(dir, `h2-${result.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${h2Markdown(result)}\n`);
log(`results written to ${file}`);

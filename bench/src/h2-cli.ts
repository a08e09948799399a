/*
 * `npm run bench:h2` (in bench/: `npm run h2`): the HTTP/2 and gRPC suite. Prints the Markdown
 * report to stdout (progress to stderr) and writes every measurement as JSON to
 * bench/results/h2-<timestamp>.json.
 */
import { finishCommand, startCommand } from './command.ts';
import { H2_HELP, parseH2Options } from './h2-options.ts';
import { h2Markdown } from './h2-report.ts';
import { runH2Suite } from './h2-suite.ts';

const { options, log } = startCommand('bench:h2', parseH2Options, H2_HELP);
const result = await runH2Suite(options, log);
finishCommand(log, { out: options.out, prefix: 'h2-', startedAt: result.startedAt, json: result, report: () => h2Markdown(result) });

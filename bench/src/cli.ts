/*
 * `npm run bench`: runs the suite, prints the Markdown report to stdout (progress goes to stderr)
 * and writes every measurement as JSON to bench/results/<timestamp>.json.
 */
import { finishCommand, startCommand } from './command.ts';
import { HELP, parseOptions } from './options.ts';
import { markdown } from './report.ts';
import { runSuite } from './suite.ts';

const { options, log } = startCommand('bench', parseOptions, HELP);
const result = await runSuite(options, log);
finishCommand(log, { out: options.out, prefix: '', startedAt: result.startedAt, json: result, report: () => markdown(result) });

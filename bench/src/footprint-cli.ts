/*
 * `npm run footprint`: the sidecar's idle and peak memory and its cost under each runtime tuning
 * (see footprint.ts). Markdown to stdout, progress to stderr, every run as JSON in
 * bench/results/footprint-<timestamp>.json.
 */
import { finishCommand, startCommand } from './command.ts';
import { FOOTPRINT_HELP, parseFootprintOptions } from './footprint-options.ts';
import { footprintMarkdown, summarizeFootprint } from './footprint-report.ts';
import { runFootprint } from './footprint.ts';

const { options, log } = startCommand('footprint', parseFootprintOptions, FOOTPRINT_HELP);
const result = await runFootprint(options, log);
const summary = summarizeFootprint(result.runs, options.variants, options.scenarios);
finishCommand(log, { out: options.out, prefix: 'footprint-', startedAt: result.startedAt, json: { ...result, summary }, report: () => footprintMarkdown(result, summary) });

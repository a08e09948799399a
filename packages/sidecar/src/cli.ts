#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createRegistrySource, type RegistrySource } from '@devstack/core';
import { HELP, parseConfig } from './config.js';
import { createLogger } from './log.js';
import { Sidecar } from './sidecar.js';
import { startTracing, tracingRequested } from './otel.js';

async function main(): Promise<number> {
  const parsed = parseConfig(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (parsed.kind === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  if (parsed.kind === 'error') {
    for (const problem of parsed.problems) process.stderr.write(`devstack-sidecar: ${problem}\n`);
    process.stderr.write('Run devstack-sidecar --help for usage.\n');
    return 2;
  }
  const { config } = parsed;
  const log = createLogger(config.logLevel);
  const stopTracing = tracingRequested(process.env) ? await startTracing(log) : undefined;
  let source: RegistrySource;
  try {
    // Imported from here, where the source packages are dependencies.
    source = await createRegistrySource({ registry: config.registry, kubernetes: { ...config.kubernetes, clusterDomain: config.clusterDomain } }, (name) => import(name));
  } catch (error) {
    process.stderr.write(`devstack-sidecar: ${(error as Error).message}\n`);
    return 1;
  }
  const sidecar = new Sidecar({ ...config, source, logger: log, tracing: stopTracing !== undefined });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    sidecar
      .close()
      .then(() => stopTracing?.())
      .then(
        () => process.exit(0),
        (error: Error) => {
          log.error('shutdown failed', { error: error.message });
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP would end the process with requests in flight; it means "read the registry again".
  // A refused file is logged and counted by the sidecar, which keeps the last good snapshot.
  process.on('SIGHUP', () => {
    if (stopping) return;
    if (source.reload === undefined) {
      log.info('registry reload', { signal: 'SIGHUP', outcome: 'unchanged', reason: `the ${source.kind} source is kept current by its watches` });
      return;
    }
    source.reload().then(
      (outcome) => log.info('registry reload', { signal: 'SIGHUP', outcome }),
      (error: Error) => log.error('registry reload failed', { signal: 'SIGHUP', error: error.message }),
    );
  });

  try {
    await sidecar.start();
  } catch (error) {
    // Nothing was serving yet: say why once and leave, without the shutdown path (and its
    // `stopped` line) for a start that never happened. What did open dies with the process.
    process.stderr.write(`devstack-sidecar: ${(error as Error).message}\n`);
    process.exit(1);
  }
  log.info('ready', { addresses: sidecar.addresses });
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`devstack-sidecar: unexpected error: ${error.stack ?? error.message}\n`);
    process.exitCode = 1;
  },
);

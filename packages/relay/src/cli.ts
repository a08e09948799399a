#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { HELP, parseConfig, type RelayConfig } from './config.js';
import { Relay, type RelayLog } from './relay.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

function logger(level: RelayConfig['logLevel']): RelayLog {
  const min = LEVELS.indexOf(level);
  const line = (lvl: (typeof LEVELS)[number], message: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) < min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg: message, ...fields })}\n`);
  };
  return { info: (m, f) => line('info', m, f), warn: (m, f) => line('warn', m, f) };
}

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
    for (const problem of parsed.problems) process.stderr.write(`devstack-relay: ${problem}\n`);
    process.stderr.write('Run devstack-relay --help for usage.\n');
    return 2;
  }
  const { config } = parsed;
  const log = logger(config.logLevel);
  const kube = { kubeconfig: config.kubeconfig, targets: config.targets, clusterDomain: config.clusterDomain, watchIdleTimeoutMs: config.watchIdleTimeoutMs };
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    try {
      tls = { cert: await readFile(config.tlsCert), key: await readFile(config.tlsKey) };
    } catch (error) {
      process.stderr.write(`devstack-relay: --tls-cert/--tls-key: ${(error as Error).message}\n`);
      return 1;
    }
  }
  let relay: Relay;
  try {
    // Loaded once the flags are good: the Kubernetes client costs a second to import, a usage error nothing.
    const { createKubernetesSource, loadKubeConfig } = await import('@devstack/registry-kubernetes');
    // Credentials are checked now, also for namespaces opened later (--all-namespaces).
    loadKubeConfig({ kubeconfig: config.kubeconfig });
    relay = new Relay({ ...config, tls, openSource: (namespace) => createKubernetesSource({ ...kube, namespaces: [namespace] }), log });
  } catch (error) {
    process.stderr.write(`devstack-relay: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    await relay.listen();
  } catch (error) {
    process.stderr.write(`devstack-relay: cannot listen: ${(error as Error).message}\n`);
    await relay.close();
    return 1;
  }
  log.info('listening', { port: relay.streamPort, adminPort: relay.adminPort, namespaces: config.namespaces ?? 'all', epoch: relay.epoch });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal });
      relay.close().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    if (code !== 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`devstack-relay: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

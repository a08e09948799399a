/*
 * The h2 suite's targets: the h2c upstream stub, nginx with grpc_pass, and the sidecar with a
 * registry file that marks the upstream's targets `protocol: h2c`. A path whose target cannot
 * start is a failed path with the reason, never the end of the run.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { H2Binding } from './h2-check.ts';
import { nginxH2Config } from './h2-nginx.ts';
import type { H2Options, H2PathId } from './h2-options.ts';
import { idleProcesses, type IdleProcess } from './environment.ts';
import { nginxAvailability, nginxVersion, startNginxWith } from './nginx.ts';
import { startNodeChild, type Target } from './processes.ts';
import { parseRuntime } from './runtime.ts';
import { sidecarCli, sidecarMissing, startSidecar } from './sidecar.ts';

const KEY_HEADER = 'uber-ctx-key';
/** The registry service name, and so the `:authority` of every call. */
export const H2_SERVICE = 'upstream';

/** A path that could not be measured at all; `skipped` when it was turned off on purpose. */
export interface H2PathFailure {
  path: H2PathId;
  reason: string;
  skipped?: true;
}

export interface H2Environment {
  bindings: H2Binding[];
  failed: H2PathFailure[];
  software: Record<string, string>;
  processes: IdleProcess[];
  /** The registry file given to the sidecar, for the report. */
  registryYaml: string | undefined;
  stop(): Promise<void>;
}

/** The sidecar's registry: both lanes of the upstream, each target marked h2c. */
export function h2RegistryYaml(base: number, features: Record<string, number>): string {
  const target = (port: number, indent: string) => `${indent}- url: http://127.0.0.1:${port}\n${indent}  protocol: h2c\n`;
  const lanes = Object.entries(features).map(([key, port]) => `      ${key}:\n${target(port, '        ')}`).join('');
  return `services:\n  ${H2_SERVICE}:\n    base:\n${target(base, '      ')}    features:\n${lanes}`;
}

export async function startH2Environment(o: H2Options, log: (line: string) => void): Promise<H2Environment> {
  const wanted = (id: H2PathId) => o.paths.includes(id);
  const targets: Target[] = [];
  const bindings: H2Binding[] = [];
  const failed: H2Environment['failed'] = [];
  const software: Record<string, string> = {};
  const tmp = mkdtempSync(join(tmpdir(), 'devstack-bench-h2-'));
  let registryYaml: string | undefined;
  const stop = async () => {
    for (const t of targets.reverse()) await t.stop().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const upstream = await startNodeChild('h2-upstream', 'h2-upstream.ts', { lanes: ['base', o.key] });
    targets.push(upstream);
    const basePort = upstream.ports['base']!;
    const featurePort = upstream.ports[o.key]!;
    const up = { role: 'upstream', pid: upstream.pid };
    const headers = { [KEY_HEADER]: o.key };

    if (wanted('direct')) bindings.push({ id: 'direct', port: featurePort, authority: H2_SERVICE, headers, expectUpstream: o.key, procs: [up] });

    if (wanted('nginx')) {
      const found = nginxAvailability(o, log);
      let reason = 'missing' in found ? found.missing : undefined;
      if ('bin' in found) {
        try {
          const version = nginxVersion(found.bin);
          const routes = { base: basePort, features: { [o.key]: featurePort }, keyHeader: KEY_HEADER };
          const nginx = await startNginxWith(found.bin, (dir, port) => nginxH2Config(dir, port, routes, version));
          targets.push(nginx);
          software['nginx'] = version;
          bindings.push({ id: 'nginx', port: nginx.ports['proxy']!, authority: H2_SERVICE, headers, expectUpstream: o.key, procs: [{ role: 'nginx-worker', pid: nginx.workerPid }, up] });
        } catch (error) {
          reason = (error as Error).message;
        }
      }
      if (reason) failed.push(o.nginx ? { path: 'nginx', reason } : { path: 'nginx', reason, skipped: true });
    }

    if (wanted('sidecar')) {
      const cli = o.sidecar ?? sidecarCli();
      const missing = sidecarMissing(cli);
      if (missing) failed.push({ path: 'sidecar', reason: missing });
      else {
        try {
          const registry = join(tmp, 'registry', 'registry.yaml');
          mkdirSync(join(tmp, 'registry'), { recursive: true });
          registryYaml = h2RegistryYaml(basePort, { [o.key]: featurePort });
          writeFileSync(registry, registryYaml);
          // The inbound listener is not measured here; it needs an app port all the same.
          const target = await startSidecar({ cli, registry, appPort: basePort, runtime: parseRuntime(o.sidecarRuntime) });
          targets.push(target);
          software['sidecar'] = cli;
          bindings.push({ id: 'sidecar', port: target.ports['outbound']!, authority: H2_SERVICE, headers, expectUpstream: o.key, procs: [{ role: 'sidecar', pid: target.pid }, up] });
        } catch (error) {
          failed.push({ path: 'sidecar', reason: `sidecar failed to start: ${(error as Error).message}` });
        }
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  bindings.sort((a, b) => o.paths.indexOf(a.id) - o.paths.indexOf(b.id));
  return { bindings, failed, software, processes: idleProcesses(bindings), registryYaml, stop };
}

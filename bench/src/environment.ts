/*
 * Starts every target the selected configurations need and binds the configurations to them.
 * A target that cannot start (nginx not installed, sidecar not built yet) turns its
 * configurations into `skipped` entries with the reason; the others still run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Binding, Skipped } from './configs.ts';
import { nginxAvailability, startNginx } from './nginx.ts';
import type { BenchOptions, ConfigId } from './options.ts';
import { ask, startNodeChild, type Target } from './processes.ts';
import { memory } from './procstat.ts';
import { parseRuntime, type Runtime } from './runtime.ts';
import { sidecarCli, sidecarMissing, startSidecar, writeRegistry, type RegistryLayout } from './sidecar.ts';

/** A measured process with its RSS (and the private part of it) once started, before any load. */
export interface IdleProcess {
  role: string;
  pid: number;
  idleRssKiB: number;
  idleAnonKiB: number;
}

export interface Environment {
  bindings: Binding[];
  skipped: Skipped[];
  software: Record<string, string>;
  sidecar: { target: Target; registry: string; layout: RegistryLayout; runtime: Runtime } | undefined;
  /** Every measured process. */
  processes: IdleProcess[];
  stop(): Promise<void>;
}

/** A process that several bindings measure (the upstream, the sidecar) is read once. */
export function idleProcesses(bindings: readonly { procs: readonly { role: string; pid: number }[] }[]): IdleProcess[] {
  const seen = new Map<number, string>();
  for (const b of bindings) for (const p of b.procs) seen.set(p.pid, p.role);
  return [...seen].map(([pid, role]) => {
    const m = memory(pid);
    return { role, pid, idleRssKiB: m.rssKiB, idleAnonKiB: m.anonKiB };
  });
}

const KEY_HEADER = 'uber-ctx-key';

export async function startEnvironment(o: BenchOptions, log: (line: string) => void): Promise<Environment> {
  const wanted = (id: ConfigId) => o.configs.includes(id);
  const targets: Target[] = [];
  const bindings: Binding[] = [];
  const skipped: Skipped[] = [];
  const software: Record<string, string> = {};
  const tmp = mkdtempSync(join(tmpdir(), 'devstack-bench-'));
  let sidecar: Environment['sidecar'];
  const stop = async () => {
    // Reverse order: the proxies go before what they forward to.
    for (const t of targets.reverse()) await t.stop().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };

  try {
    const upstream = await startNodeChild('upstream', 'upstream.ts', { lanes: ['base', o.key] });
    targets.push(upstream);
    const basePort = upstream.ports['base']!;
    const featurePort = upstream.ports[o.key]!;
    const up = { role: 'upstream', pid: upstream.pid };
    const keyed = (host: string) => ({ host, [KEY_HEADER]: o.key });

    if (wanted('direct')) {
      bindings.push({ id: 'direct', port: featurePort, headers: keyed('upstream'), expectUpstream: o.key, expectLane: undefined, procs: [up] });
    }

    if (wanted('app-direct')) {
      const app = await startNodeChild('app-direct', 'app.ts', { targetPort: featurePort, keyHeader: KEY_HEADER });
      targets.push(app);
      bindings.push({ id: 'app-direct', port: app.ports['app']!, headers: keyed('app'), expectUpstream: o.key, expectLane: undefined, procs: [{ role: 'app', pid: app.pid }, up] });
    }

    if (wanted('http-proxy')) {
      const peer = await startNodeChild('http-proxy', 'http-proxy-peer.ts', {
        base: `http://127.0.0.1:${basePort}`,
        features: { [o.key]: `http://127.0.0.1:${featurePort}` },
        keyHeader: KEY_HEADER,
      });
      targets.push(peer);
      bindings.push({ id: 'http-proxy', port: peer.ports['proxy']!, headers: keyed('upstream'), expectUpstream: o.key, expectLane: o.key, procs: [{ role: 'http-proxy', pid: peer.pid }, up] });
    }

    if (wanted('nginx')) {
      const found = nginxAvailability(o, log);
      let reason = 'missing' in found ? found.missing : undefined;
      if ('bin' in found) {
        try {
          const nginx = await startNginx(found.bin, { base: basePort, features: { [o.key]: featurePort }, keyHeader: KEY_HEADER });
          targets.push(nginx);
          software['nginx'] = nginx.version;
          bindings.push({ id: 'nginx', port: nginx.ports['proxy']!, headers: keyed('upstream'), expectUpstream: o.key, expectLane: o.key, procs: [{ role: 'nginx-worker', pid: nginx.workerPid }, up] });
        } catch (error) {
          reason = (error as Error).message;
        }
      }
      if (reason) skipped.push({ config: 'nginx', reason });
    }

    const sidecarIds = (['sidecar-base', 'sidecar-key', 'sidecar-pod'] as const).filter(wanted);
    if (sidecarIds.length > 0) {
      const cli = o.sidecar ?? sidecarCli();
      const missing = sidecarMissing(cli);
      if (missing) {
        for (const id of sidecarIds) skipped.push({ config: id, reason: missing });
      } else {
        try {
          const app = await startNodeChild('app-pod', 'app.ts', { keyHeader: KEY_HEADER });
          targets.push(app);
          const registry = join(tmp, 'registry.yaml');
          const layout: RegistryLayout = { base: basePort, features: { [o.key]: featurePort } };
          writeRegistry(registry, layout);
          const runtime = parseRuntime(o.sidecarRuntime);
          const target = await startSidecar({ cli, registry, appPort: app.ports['app']!, runtime, ...(o.cpuProf ? { cpuProfDir: o.cpuProf } : {}) });
          targets.push(target);
          await ask(app, { type: 'target', targetPort: target.ports['outbound'] }, 'target-set');
          sidecar = { target, registry, layout, runtime };
          software['sidecar'] = cli;
          const sc = { role: 'sidecar', pid: target.pid };
          const out = target.ports['outbound']!;
          if (wanted('sidecar-base')) bindings.push({ id: 'sidecar-base', port: out, headers: { host: 'upstream' }, expectUpstream: 'base', expectLane: 'base', procs: [sc, up] });
          if (wanted('sidecar-key')) bindings.push({ id: 'sidecar-key', port: out, headers: keyed('upstream'), expectUpstream: o.key, expectLane: o.key, procs: [sc, up] });
          if (wanted('sidecar-pod')) {
            bindings.push({ id: 'sidecar-pod', port: target.ports['inbound']!, headers: keyed('app'), expectUpstream: o.key, expectLane: undefined, procs: [sc, { role: 'app', pid: app.pid }, up] });
          }
        } catch (error) {
          for (const id of sidecarIds) skipped.push({ config: id, reason: `sidecar failed to start: ${(error as Error).message}` });
        }
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  // Keep the configurations in the canonical order whatever order they started in.
  bindings.sort((a, b) => o.configs.indexOf(a.id) - o.configs.indexOf(b.id));
  return { bindings, skipped, software, sidecar, processes: idleProcesses(bindings), stop };
}

/*
 * Registry change to routing, end to end: the registry file of the running sidecar is rewritten
 * with a new feature key, and requests carrying that key are sent back to back until one comes
 * back from the new lane. The figure is the time from just before the write to that response.
 */
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { registryYaml, type RegistryLayout } from './sidecar.ts';

export interface ReloadResult {
  /** Milliseconds from the file write to the first response routed by the new registry. */
  ms: number[];
  /** Requests sent per iteration before the new lane answered. */
  requests: number[];
}

function lane(agent: Agent, port: number, key: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, path: '/bytes/0', headers: { host: 'upstream', 'uber-ctx-key': key }, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.headers['x-devstack-lane'] as string | undefined));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 2000 ms')));
    req.on('error', reject);
    req.end();
  });
}

export async function reloadLatency(outboundPort: number, registry: string, layout: RegistryLayout, iterations: number, timeoutMs = 5000): Promise<ReloadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const result: ReloadResult = { ms: [], requests: [] };
  const featurePort = Object.values(layout.features)[0] ?? layout.base;
  try {
    for (let i = 0; i < iterations; i++) {
      const key = `reload-${Date.now().toString(36)}-${i}`;
      const before = await lane(agent, outboundPort, key);
      if (before === key) throw new Error(`key ${key} already routed before the change`);
      const started = performance.now();
      writeFileSync(registry, registryYaml({ base: layout.base, features: { ...layout.features, [key]: featurePort } }));
      let requests = 0;
      for (;;) {
        requests++;
        if ((await lane(agent, outboundPort, key)) === key) break;
        if (performance.now() - started > timeoutMs) throw new Error(`registry change not routed within ${timeoutMs} ms`);
      }
      result.ms.push(performance.now() - started);
      result.requests.push(requests);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    // Put the registry back as the load runs had it.
    writeFileSync(registry, registryYaml(layout));
    agent.destroy();
  }
  return result;
}

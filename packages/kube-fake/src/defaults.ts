import type { KubeObject } from './types.js';

type Json = Record<string, unknown>;

const asRecord = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);

/** Cluster IPs from the default service CIDR, handed out in order. */
export class ClusterIps {
  #next = 10;
  allocate(): string {
    const n = this.#next++;
    return `10.96.${Math.floor(n / 256) % 256}.${n % 256}`;
  }
}

/**
 * The server-side defaults of the real API server that clients read back: Service type, cluster
 * IP and port protocol/targetPort, Secret type and stringData, Namespace phase and name label,
 * EndpointSlice port protocol. `previous` is the stored object on an update.
 */
export function applyDefaults(object: KubeObject, previous: KubeObject | undefined, ips: ClusterIps): void {
  switch (object.kind) {
    case 'Service':
      return serviceDefaults(object, previous, ips);
    case 'Secret': {
      object.type ??= 'Opaque';
      const stringData = asRecord(object.stringData);
      if (stringData) {
        const data = { ...(asRecord(object.data) ?? {}) };
        for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(String(v)).toString('base64');
        object.data = data;
        delete object.stringData;
      }
      return;
    }
    case 'Namespace': {
      object.spec ??= { finalizers: ['kubernetes'] };
      object.status ??= { phase: 'Active' };
      const meta = object.metadata!;
      meta.labels = { ...meta.labels, 'kubernetes.io/metadata.name': meta.name! };
      return;
    }
    case 'EndpointSlice':
      for (const port of (Array.isArray(object.ports) ? object.ports : []) as Json[]) port.protocol ??= 'TCP';
      return;
  }
}

function serviceDefaults(object: KubeObject, previous: KubeObject | undefined, ips: ClusterIps): void {
  const spec = (asRecord(object.spec) ?? (object.spec = {})) as Json;
  const before = asRecord(previous?.spec);
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (spec.type !== 'ExternalName') {
    // The cluster IP is immutable: an update that leaves it out keeps the allocated one.
    spec.clusterIP ??= before?.clusterIP ?? ips.allocate();
    spec.clusterIPs ??= before?.clusterIPs ?? [spec.clusterIP];
    spec.ipFamilies ??= before?.ipFamilies ?? ['IPv4'];
    spec.ipFamilyPolicy ??= 'SingleStack';
    spec.internalTrafficPolicy ??= 'Cluster';
  }
  for (const port of (Array.isArray(spec.ports) ? spec.ports : []) as Json[]) {
    port.protocol ??= 'TCP';
    port.targetPort ??= port.port;
  }
  object.status ??= { loadBalancer: {} };
}

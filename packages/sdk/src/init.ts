import { diag } from '@opentelemetry/api';
import { createKeyCodec, createRegistrySource, deferredSource, registryKind, type PassiveHealthOptions, type RegistrySource, type TargetHealth } from '@devstack/core';
import { ensureContextManager } from './context.js';
import { createHostPolicy, type HostPolicyOptions } from './hosts.js';
import { installHttp } from './http.js';
import { installHttp2 } from './http2.js';
import { checkLane } from './inbound.js';
import { ensurePropagation } from './otel-globals.js';
import { createMetrics } from './metrics.js';
import { checkInitOptions } from './options.js';
import { watchReadiness } from './ready.js';
import { Router } from './router.js';
import { defaultRuntime, runCloseHooks, setRuntime } from './runtime.js';
import { installUndici } from './undici.js';

export interface InitOptions extends HostPolicyOptions {
  /** The key's name in every carrier. Default `uber-ctx-key`. */
  keyName?: string;
  /** Base domains whose first label is a key on inbound requests (`feature1.example.com`). */
  domains?: readonly string[];
  /** The lane this process serves: `base` (default) or its feature copy's key. */
  lane?: string;
  /**
   * The registry service this process is (a worker's own Service): which lane consumes a message
   * is decided for it (`shouldConsume`).
   */
  service?: string;
  /**
   * Proxyless mode: a registry source, the path of a registry file, or `k8s` (Services and
   * EndpointSlices from the Kubernetes API; needs `@devstack/registry-kubernetes` installed). Calls
   * addressed to one of its services (`http://orders/...`) are sent to the lane the sidecar's
   * routing step picks.
   */
  registry?: RegistrySource | string;
  /**
   * With `registry: 'k8s'`: `namespaces`, `allNamespaces`, `kubeconfig`, `targets`
   * (`service` or `endpoints`), `watchIdleTimeoutMs`, `requestTimeoutMs`, `pageSize`, `maxDelayMs`
   * and `reportIntervalMs`, as `createKubernetesSource` takes them.
   */
  kubernetes?: Readonly<Record<string, unknown>>;
  /**
   * With `registry: 'http(s)://...'` (a devstack-relay): `namespace` (default `namespaces`, else
   * `DEVSTACK_NAMESPACE`), `idleTimeoutMs`, `connectTimeoutMs`, `maxMessageBytes`,
   * `reportIntervalMs` and `backoff`, as `@devstack/registry-relay` takes them.
   */
  relay?: Readonly<Record<string, unknown>>;
  /**
   * The fleet's namespaces (`DEVSTACK_NAMESPACE`): `<service>.<namespace>[.svc[.<cluster domain>]]`
   * names in them are given the key as registry services are, with or without a registry; a `k8s`
   * or relay registry follows them unless `kubernetes.namespaces` says otherwise.
   */
  namespaces?: readonly string[];
  /** Kubernetes cluster domain of `<service>.<namespace>.svc.<domain>` names. Default `cluster.local`. */
  clusterDomain?: string;
  /** Strict resolution in proxyless mode: unknown keys and unready copies fail instead of base. */
  strict?: boolean;
  /** A prom-client Registry: the sidecar's metric names are registered in it. */
  metrics?: unknown;
  /**
   * Proxyless mode: passive health of targets (`ejectAfter`, `baseEjectionMs`, `maxEjectionMs`,
   * `maxTracked`, and `now`, a clock for tests). A call whose connection fails before any byte was
   * sent goes to the lane's next ready target, then base (strict: a RoutingRejectedError,
   * `DEVSTACK_NO_READY_UPSTREAM`), and the target is passed over for a while. `false` turns it off.
   */
  passiveHealth?: PassiveHealthOptions | false;
  /**
   * Proxyless mode: how long a node:http(s) or gRPC call waits for its target's connection before
   * it counts as failed (fetch and undici use their dispatcher's own connect timeout). Default 5000.
   */
  connectTimeoutMs?: number;
}

export interface DevstackSdk {
  /** Proxyless mode is on. */
  readonly proxyless: boolean;
  /**
   * Proxyless mode: resolves true once routing has a snapshot, and rejects with a
   * RegistryUnavailableError (`DEVSTACK_REGISTRY_UNAVAILABLE`, `cause`: the source's error) if the
   * first one cannot be loaded. Without a registry it resolves false.
   */
  readonly ready: Promise<boolean>;
  /**
   * Proxyless mode: every target with a connect failure on record (`origin`,
   * `consecutiveFailures`, `ejections`, `ejectedUntil` while it is passed over). Empty otherwise.
   */
  health(): TargetHealth[];
  /** Removes every hook, restores the defaults and closes a registry file source it opened. */
  close(): Promise<void>;
}

let active: DevstackSdk | undefined;

/**
 * Turns the SDK on: the key in context is carried on every outbound fetch, undici and node:http(s)
 * call to an allowed host, and in proxyless mode calls to registry services are routed. Bad options
 * throw a ConfigError here, at start-up; nothing after that throws into the app.
 */
export function init(options: InitOptions = {}): DevstackSdk {
  checkInitOptions(options);
  if (active !== undefined) {
    diag.warn('devstack: init() was already called; the first configuration stays in force');
    return active;
  }
  const codec = createKeyCodec({ name: options.keyName, domains: options.domains });
  checkLane(options.lane, 'init');
  const lane = options.lane ?? 'base';
  const metrics = options.metrics === undefined ? undefined : createMetrics(options.metrics);
  const noHosts: ReadonlySet<string> = new Set();
  let router: Router | undefined;
  // Validated before anything subscribes to the source, so a bad option leaves nothing behind.
  const allowed = createHostPolicy(options, () => router?.hosts() ?? noHosts, (host) => router?.serviceFor(host) !== undefined);
  const setting = options.registry;
  // A named registry is opened here (one factory for every source, imported from here, where the
  // source packages are dependencies); a given source belongs to the app.
  const owned =
    typeof setting === 'string'
      ? deferredSource(registryKind(setting), () =>
          createRegistrySource({ registry: setting, file: { persistent: false }, kubernetes: { ...(options.namespaces === undefined ? {} : { namespaces: options.namespaces }), ...options.kubernetes, clusterDomain: options.clusterDomain }, relay: options.relay }, (name) => import(name)),
        )
      : undefined;
  const source = owned ?? (setting as RegistrySource | undefined);
  if (source !== undefined) {
    router = new Router(source, {
      strict: options.strict,
      defaultKey: lane === 'base' ? undefined : lane,
      clusterDomain: options.clusterDomain,
      onSnapshot: (s) => metrics?.snapshot(s),
      passiveHealth: options.passiveHealth,
      connectTimeoutMs: options.connectTimeoutMs,
      onEjected: (service, ejectedLane) => metrics?.ejection(service, ejectedLane),
      onFailover: (service, from, to) => metrics?.failover(service, from, to),
    });
  }
  setRuntime({ codec, lane, service: options.service, defaultKey: lane === 'base' ? undefined : lane, allowed, router, metrics, unrouted: (host) => readiness.unrouted(host) });
  ensureContextManager();
  ensurePropagation();
  const readiness = watchReadiness(router, owned !== undefined ? String(setting) : `the ${source?.kind ?? ''} source`);
  const uninstall = [installUndici(router !== undefined), installHttp(router !== undefined), installHttp2()];
  const { ready } = readiness;
  const routing = router;
  const sdk: DevstackSdk = {
    proxyless: router !== undefined,
    ready,
    health: () => routing?.healthStatus() ?? [],
    async close() {
      if (active !== sdk) return;
      active = undefined;
      for (const off of uninstall) off();
      runCloseHooks();
      routing?.close();
      setRuntime(defaultRuntime());
      await owned?.close();
    },
  };
  active = sdk;
  return sdk;
}

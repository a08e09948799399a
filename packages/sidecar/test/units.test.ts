import t from 'tap';
import { buildSnapshot } from '@devstack/core';
import { GRPC_STATUS, GRPC_STATUS_OF, PROXY_ERRORS, SidecarMetrics, compose, encodeGrpcMessage, endToEndHeaders, grpcTimeoutMs, hostHeaderCount, isGrpc, parseConfig, readHops, sniff, type Stage } from '@devstack/sidecar';

t.test('endToEndHeaders drops hop-by-hop and Connection-named headers', async (t) => {
  t.same(
    endToEndHeaders({ connection: 'close, X-Trace-Hop', 'x-trace-hop': '1', 'transfer-encoding': 'chunked', upgrade: 'websocket', te: 'gzip', trailer: 'x-sum', a: '1', 'set-cookie': ['x', 'y'] }),
    { a: '1', 'set-cookie': ['x', 'y'] },
  );
  // Of TE, only the trailers token is end to end (RFC 9110 §10.1.4).
  t.same(endToEndHeaders({ connection: 'te', te: 'deflate;q=0.5, trailers' }), { te: 'trailers' });
});

t.test('readHops trusts only one plain non-negative integer', async (t) => {
  const rows: Array<[string | string[] | undefined, number]> = [
    [undefined, 0],
    ['0', 0],
    ['15', 15],
    ['-1000', -1],
    ['+1', -1],
    ['1.5', -1],
    [' 1', -1],
    ['1, 2', -1],
    [['1', '2'], -1],
    ['', -1],
    ['0x10', -1],
    ['1e3', -1],
    ['9999999999', -1],
  ];
  for (const [raw, hops] of rows) t.equal(readHops(raw), hops, JSON.stringify(raw));
});

t.test('hostHeaderCount reads raw headers case-insensitively', async (t) => {
  t.equal(hostHeaderCount(['Host', 'a', 'x', 'y', 'HOST', 'b']), 2);
  t.equal(hostHeaderCount(['x-host', 'a']), 0);
});

t.test('compose runs stages in order and stops where a stage answers', async (t) => {
  const seen: string[] = [];
  const stage = (name: string, goOn = true): Stage => (ex) => {
    seen.push(name);
    if (goOn) ex.next();
  };
  const run = compose('outbound', [stage('a'), stage('b', false), stage('c')]);
  run({ url: '/', headers: {} } as never, {} as never);
  t.same(seen, ['a', 'b']);
});

t.test('parseConfig: flags, environment and defaults', async (t) => {
  const env = { DEVSTACK_REGISTRY: 'r.yaml', DEVSTACK_OUTBOUND_PORT: '15001', DEVSTACK_STRICT: 'true', DEVSTACK_DOMAIN: 'a.test, b.test' };
  const parsed = parseConfig(['--outbound-port', '0', '--edge-port', '8080', '--entry', 'web'], env);
  t.equal(parsed.kind, 'config');
  if (parsed.kind !== 'config') return;
  t.same(parsed.config.outbound, { port: 0 }, 'the flag wins over the environment');
  t.equal(parsed.config.strict, true);
  t.same(parsed.config.edge, { port: 8080, domains: ['a.test', 'b.test'], entry: 'web', dropClientKeys: false });
  t.equal(parsed.config.logLevel, 'info');
  const repeated = parseConfig(['--registry', 'r', '--edge-port', '1', '--entry', 'w', '--domain', 'x.test', '--domain', 'y.test,z.test'], {});
  t.same(repeated.kind === 'config' && repeated.config.edge?.domains, ['x.test', 'y.test', 'z.test']);
  const bad = parseConfig(['--registry', 'r', '--outbound-port', '1'], { DEVSTACK_STRICT: 'maybe', DEVSTACK_MAX_HOPS: '0' });
  t.same(bad.kind === 'error' && bad.problems, ['DEVSTACK_STRICT: expected true or false, got "maybe"', '--max-hops (DEVSTACK_MAX_HOPS): expected a whole number from 1 to 1000, got "0"']);
  t.same(parseConfig(['-h'], {}), { kind: 'help' });
});

t.test('parseConfig: the Kubernetes registry flags, only with --registry k8s', async (t) => {
  const ok = parseConfig(['--registry', 'k8s', '--outbound-port', '0', '--namespace', 'shop,team-a', '--namespace', 'web', '--targets', 'endpoints', '--kubeconfig', '/k', '--watch-idle-timeout', '5000'], {});
  t.same(ok.kind === 'config' && ok.config.kubernetes, { namespaces: ['shop', 'team-a', 'web'], kubeconfig: '/k', targets: 'endpoints', watchIdleTimeoutMs: 5000 });
  const env = parseConfig(['--outbound-port', '0'], { DEVSTACK_REGISTRY: 'k8s', DEVSTACK_ALL_NAMESPACES: 'true', DEVSTACK_TARGETS: 'service' });
  t.same(env.kind === 'config' && env.config.kubernetes, { allNamespaces: true, targets: 'service' }, 'from the environment');
  const rows: Array<[string[], string]> = [
    [['--registry', 'k8s', '--namespace', 'Shop'], '--namespace (DEVSTACK_NAMESPACE): "Shop" is not a namespace name (a DNS-1123 label)'],
    [['--registry', 'k8s', '--namespace', 'a', '--all-namespaces'], '--namespace and --all-namespaces: give one of them'],
    [['--registry', 'k8s', '--targets', 'pods'], '--targets (DEVSTACK_TARGETS): expected service or endpoints, got "pods"'],
    [['--registry', 'k8s', '--watch-idle-timeout', '10'], '--watch-idle-timeout (DEVSTACK_WATCH_IDLE_TIMEOUT): expected a whole number from 1000 to 3600000, got "10"'],
    [['--registry', 'r.yaml', '--namespace', 'shop'], '--namespace (DEVSTACK_NAMESPACE): only used with --registry k8s'],
    [['--registry', 'r.yaml', '--kubeconfig', '/k'], '--kubeconfig (DEVSTACK_KUBECONFIG): only used with --registry k8s'],
  ];
  for (const [args, problem] of rows) t.same(parseConfig([...args, '--outbound-port', '0'], {}), { kind: 'error', problems: [problem] }, args.join(' '));
});

t.test('parseConfig: --app-protocol, only with --inbound-port', async (t) => {
  const h2c = parseConfig(['--registry', 'r', '--inbound-port', '15000', '--app-port', '50051', '--app-protocol', 'h2c'], {});
  t.same(h2c.kind === 'config' && h2c.config.inbound, { port: 15000, appPort: 50051, appProtocol: 'h2c' });
  const fromEnv = parseConfig(['--registry', 'r', '--inbound-port', '15000', '--app-port', '8080'], { DEVSTACK_APP_PROTOCOL: 'http1' });
  t.same(fromEnv.kind === 'config' && fromEnv.config.inbound, { port: 15000, appPort: 8080, appProtocol: 'http1' });
  const plain = parseConfig(['--registry', 'r', '--inbound-port', '15000', '--app-port', '8080'], {});
  t.same(plain.kind === 'config' && plain.config.inbound, { port: 15000, appPort: 8080 }, 'default: the inbound target speaks HTTP/1.1');
  t.same(parseConfig(['--registry', 'r', '--inbound-port', '1', '--app-port', '2', '--app-protocol', 'grpc'], {}), { kind: 'error', problems: ['--app-protocol (DEVSTACK_APP_PROTOCOL): expected http1 or h2c, got "grpc"'] });
  t.same(parseConfig(['--registry', 'r', '--outbound-port', '1', '--app-protocol', 'h2c'], {}), { kind: 'error', problems: ['--app-protocol (DEVSTACK_APP_PROTOCOL): only used with --inbound-port'] });
});

t.test('gRPC helpers: content types, grpc-timeout, grpc-message encoding, the status of every code', async (t) => {
  for (const [type, grpc] of [['application/grpc', true], ['application/grpc+proto', true], ['application/grpc;charset=utf-8', true], ['Application/GRPC', true], ['application/grpc-web', false], ['application/grpcx', false], ['text/plain', false], [undefined, false]] as const) {
    t.equal(isGrpc({ 'content-type': type }), grpc, `${String(type)}: ${grpc ? '' : 'not '}gRPC`);
  }
  for (const [value, ms] of [['1S', 1000], ['150m', 150], ['2M', 120_000], ['1H', 3_600_000], ['5000u', 5], ['12345678n', 12.345678], ['0m', 0]] as const) t.equal(grpcTimeoutMs(value), ms, `grpc-timeout ${value}`);
  for (const bad of ['', '1', 'm', '123456789m', '-1S', '1s', '1 S', '1.5S']) t.equal(grpcTimeoutMs(bad), undefined, `malformed grpc-timeout ${JSON.stringify(bad)} is ignored`);
  t.equal(grpcTimeoutMs(['1S', '2S']), undefined, 'two grpc-timeout headers are not trusted');
  t.equal(encodeGrpcMessage('no service named "a b" 100%'), 'no service named "a b" 100%25');
  t.equal(encodeGrpcMessage('ünïcode\n'), '%C3%BCn%C3%AFcode%0A');
  t.same(Object.keys(GRPC_STATUS_OF).sort(), Object.keys(PROXY_ERRORS).sort(), 'every sidecar error has a gRPC status');
  t.equal(GRPC_STATUS_OF.DEVSTACK_UNKNOWN_SERVICE, GRPC_STATUS.UNIMPLEMENTED);
  t.equal(GRPC_STATUS_OF.DEVSTACK_NO_READY_UPSTREAM, GRPC_STATUS.UNAVAILABLE);
  t.equal(GRPC_STATUS_OF.DEVSTACK_DEADLINE_EXCEEDED, GRPC_STATUS.DEADLINE_EXCEEDED);
  t.equal(GRPC_STATUS_OF.DEVSTACK_LOOP_DETECTED, GRPC_STATUS.RESOURCE_EXHAUSTED);
});

t.test('sniff: the HTTP/2 preface, byte by byte', async (t) => {
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  for (let n = 1; n < preface.length; n++) t.equal(sniff(preface.subarray(0, n)), undefined, `${n} bytes of the preface: wait for more`);
  t.equal(sniff(preface), 'h2');
  t.equal(sniff(Buffer.concat([preface, Buffer.from([0, 0, 0, 4])])), 'h2', 'the preface and the first frame in one read');
  t.equal(sniff(Buffer.from('GET / HTTP/1.1\r\n')), 'http1');
  t.equal(sniff(Buffer.from('PRI * HTTP/1.1\r\n')), 'http1', 'a different byte anywhere: HTTP/1.1 judges it');
  t.equal(sniff(Buffer.from('P')), undefined);
  t.equal(sniff(Buffer.from('Q')), 'http1');
});

t.test('the stack-problems gauge counts the stacks the current snapshot refused', async (t) => {
  const metrics = new SidecarMetrics({ defaultMetrics: false });
  const services = { web: { base: 'http://127.0.0.1:1', features: { a: 'http://127.0.0.1:2' } } };
  const gauge = async () => (await metrics.registry.getSingleMetric('devstack_registry_stack_problems')!.get()).values[0]?.value;
  metrics.snapshot(buildSnapshot({ services, stacks: { b: 'a' } }));
  t.equal(await gauge(), 0, 'an accepted stack is no problem');
  metrics.snapshot(buildSnapshot({ services, stacks: { b: 'c', c: 'b' } }));
  t.ok(((await gauge()) ?? 0) >= 1, 'a cycle is counted');
  metrics.snapshot(buildSnapshot({ services }));
  t.equal(await gauge(), 0, 'gone with the snapshot that had it');
});

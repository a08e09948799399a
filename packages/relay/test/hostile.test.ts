/*
 * The relay port under clients that do not play along: a subscriber that stops reading, garbage,
 * huge headers, and a flood of idle connections. None may end the process or hold up the others.
 */
import { connect, type Socket } from 'node:net';
import t from 'tap';
import type { DeltaMessage } from '@devstack/registry-relay';
import { NS, Stream, deploy, fleet, get, replay, service, slice, sliceRef, startRelay, until } from './helpers.ts';

const ENDPOINTS = 3000;
const addresses = Array.from({ length: ENDPOINTS }, (_, i) => `10.1.${Math.floor(i / 250)}.${i % 250}`);

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

t.test('a subscriber that stops reading holds up nobody and catches up with the newest state', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  api.create(service('big', 'big'));
  api.create(slice('big', addresses));
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints']);
  const fast = await Stream.open(relay.port, NS);
  const slow = await Stream.open(relay.port, NS);
  t.teardown(() => [fast, slow].forEach((s) => s.close()));
  await Promise.all([fast.next(), slow.next()]);
  slow.res.pause();

  // Each change rewrites the big service (about 80 KB a delta) until the slow socket is full and
  // the relay coalesces; bounded, so a relay that queued instead fails here.
  let coalesced = 0;
  let changes = 0;
  for (let i = 0; i < 400 && coalesced === 0; i++) {
    const current = api.get(sliceRef('big')) as { metadata: { resourceVersion: string } };
    const next = slice('big', addresses);
    next.endpoints[0]!.conditions.ready = i % 2 === 1;
    api.update({ ...next, metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion } });
    changes++;
    const seen = fast.messages.length;
    await fast.next((m) => m.type === 'delta', seen);
    if (i % 10 === 9) coalesced = metric((await get(relay.adminPort, '/metrics')).text, 'devstack_relay_coalesced_total');
  }
  t.ok(coalesced > 0, `the stalled subscriber's changes were coalesced (after ${changes} changes)`);
  deploy(api, 'web-last', 'web', '10.0.9.9', 'last');
  await fast.next((m) => m.type === 'delta' && 'web' in (m as DeltaMessage).services);
  t.pass('the reading subscriber got every change while the other was stalled');

  slow.res.resume();
  await slow.next(() => 'last' in ((replay(slow.messages)['web'] as { features?: Record<string, unknown> } | undefined)?.features ?? {}));
  t.same(replay(slow.messages), replay(fast.messages), 'caught up with the newest state');
  const slowDeltas = slow.messages.filter((m) => m.type === 'delta').length;
  const fastDeltas = fast.messages.filter((m) => m.type === 'delta').length;
  t.ok(slowDeltas < fastDeltas, `fewer messages, not a backlog (${slowDeltas} against ${fastDeltas})`);
});

t.test('a subscriber that reads nothing for --stall-timeout is ended; the others stream on', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  api.create(service('big', 'big'));
  api.create(slice('big', addresses));
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--targets', 'endpoints', '--stall-timeout', '100']);
  const fast = await Stream.open(relay.port, NS);
  const slow = await Stream.open(relay.port, NS);
  t.teardown(() => [fast, slow].forEach((s) => s.close()));
  await Promise.all([fast.next(), slow.next()]);
  slow.res.pause();
  let stalled = 0;
  for (let i = 0; i < 400 && stalled === 0; i++) {
    const current = api.get(sliceRef('big')) as { metadata: { resourceVersion: string } };
    const next = slice('big', addresses);
    next.endpoints[0]!.conditions.ready = i % 2 === 1;
    api.update({ ...next, metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion } });
    await fast.next((m) => m.type === 'delta', fast.messages.length);
    if (i % 10 === 9) stalled = metric((await get(relay.adminPort, '/metrics')).text, 'devstack_relay_stalled_ended_total');
  }
  t.equal(stalled, 1, 'the stalled stream was ended');
  deploy(api, 'web-on', 'web', '10.0.8.8', 'on');
  await fast.next((m) => m.type === 'delta' && 'web' in (m as DeltaMessage).services);
  t.pass('the reading subscriber streams on');
});

function raw(port: number, bytes: string): Promise<{ text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ text, socket }));
    socket.on('timeout', () => reject(new Error('no answer')));
  });
}

t.test('garbage, huge headers and a flood of idle connections end nothing and starve nobody', async (t) => {
  const { api, kubeconfig } = await fleet(t);
  const relay = await startRelay(t, ['--kubeconfig', kubeconfig, '--namespace', NS, '--max-connections', '20', '--headers-timeout', '500', '--max-header-size', '4096', '--max-admin-connections', '5']);
  const sub = await Stream.open(relay.port, NS);
  t.teardown(() => sub.close());
  await sub.next();

  const garbage = await raw(relay.port, 'HELLO THERE\r\n\r\n');
  t.match(garbage.text, /^HTTP\/1\.1 400 /, 'garbage: 400');
  t.match(garbage.text, /"code":"DEVSTACK_RELAY_BAD_REQUEST"/, 'with a JSON body and its code');
  const binary = await raw(relay.port, '\u0000\u0001\u0002\u00ff'.repeat(100));
  t.match(binary.text, /^HTTP\/1\.1 400 /, 'binary: 400');
  const huge = await raw(relay.port, `GET /v1/namespaces/${NS}/stream HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.match(huge.text, /^HTTP\/1\.1 431 /, 'huge headers: 431');
  const partial = await raw(relay.port, `GET /v1/namespaces/${NS}/stream HTTP/1.1\r\nhost: x\r\n`);
  t.match(partial.text, /^(HTTP\/1\.1 408 |$)/, 'a request never finished is closed');

  // More idle connections than --max-connections: the excess is closed at once, the rest by the headers timeout.
  const idle = await Promise.all(
    Array.from({ length: 40 }, () => new Promise<Socket>((resolve) => {
      const s = connect(relay.port, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
    })),
  );
  t.teardown(() => idle.forEach((s) => s.destroy()));
  deploy(api, 'web-f9', 'web', '10.0.9.1', 'f9');
  await sub.next((m) => m.type === 'delta');
  t.pass('the subscriber already streaming still gets changes');
  await Promise.all(idle.map((s) => (s.destroyed ? undefined : new Promise((resolve) => s.once('close', resolve)))));
  t.pass('every idle connection was closed by the relay');
  const late = await Stream.open(relay.port, NS);
  t.teardown(() => late.close());
  t.equal((await late.next()).type, 'snapshot', 'a new subscriber is served after the flood');
  // The admin port is bounded too; what it dropped is counted once a slot is free again.
  const probes = await Promise.all(
    Array.from({ length: 10 }, () => new Promise<Socket>((resolve) => {
      const s = connect(relay.adminPort, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
    })),
  );
  await until(async () => probes.filter((s) => s.destroyed || s.readyState !== 'open').length, (n) => n >= 5);
  probes.forEach((s) => s.destroy());
  const metrics = (await until(() => get(relay.adminPort, '/metrics').catch(() => undefined), (r) => r?.status === 200))!.text;
  t.ok(metric(metrics, 'devstack_relay_rejected_total{reason="admin_connections"}') > 0, 'admin connections over the cap counted');
  t.ok(metric(metrics, 'devstack_relay_rejected_total{reason="connections"}') > 0, 'connections over the cap counted');
  t.ok(metric(metrics, 'devstack_relay_rejected_total{reason="bad_request"}') >= 2, 'garbage counted');
  t.ok(metric(metrics, 'devstack_relay_rejected_total{reason="header_size"}') >= 1, 'huge headers counted');
  t.equal(relay.proc.exitCode, null, 'the relay runs on');
  t.equal((await get(relay.adminPort, '/healthz')).status, 200);
  await until(async () => sub.messages.length, (n) => n >= 2);
});

import t from 'tap';
import { raw, send, sidecar, upstream, writeRegistry } from './helpers.ts';

// A seeded stream of hostile requests: every answer is well-formed, every error the sidecar makes
// carries a JSON body with a DEVSTACK_ code, and the sidecar keeps serving afterwards.
t.test('hostile requests get clear errors and never take the sidecar down', async (t) => {
  const dir = t.testdir();
  const a = await upstream(t, 'a');
  const s = await sidecar(t, writeRegistry(dir, { a: { base: a.origin, features: { f: a.origin } } }), {
    edge: { port: 0, host: '127.0.0.1', domains: ['example.com'], entry: 'a' },
  });
  let seed = 20261126;
  const pick = <T>(list: readonly T[]): T => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return list[(seed >>> 16) % list.length]!;
  };
  const methods = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
  const targets = ['/', 'http://a/x', 'http://f.example.com/', '*', '/%zz?x=%', 'http://[::1]:80/', 'a:80'];
  const hosts = ['a', 'example.com', 'f.example.com', 'zzz', 'a.ns.svc.cluster.local:80', '', 'ÿþ', 'a'.repeat(300)];
  const names = ['uber-ctx-key', 'baggage', 'uberctx-uber-ctx-key', 'host', 'connection', 'upgrade', 'x-devstack-hops', 'expect', 'te', 'x-forwarded-for'];
  const values = ['f', 'F', '', ' ', '%', '%zz', 'a,b', 'uber-ctx-key=f,uber-ctx-key=g', 'x'.repeat(70), 'a.b.example.com', '[::1]:80', '-1', '99999999999999999999', 'keep-alive, x', 'upgrade', 'websocket', '100-continue', 'ÿþ', ';;;=,,,', '=f', 'a;b=c', '`rm -rf`', '"quoted"'];
  const ports = [s.addresses.outbound!.port, s.addresses.edge!.port];
  const counts = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const method = pick(methods);
    let head = `${method} ${pick(targets)} HTTP/1.1\r\n`;
    if (pick([true, true, true, false])) head += `Host: ${pick(hosts)}\r\n`;
    for (let n = pick([0, 1, 2, 3, 4, 5]); n > 0; n--) head += `${pick(names)}: ${pick(values)}\r\n`;
    head += 'Content-Length: 0\r\nConnection: close\r\n\r\n';
    const answer = await raw(pick(ports), head);
    const request = JSON.stringify(head);
    // Answers after an interim `100 Continue` are what counts.
    const final = answer.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(final)?.[1];
    if (status === undefined) {
      t.fail(`no HTTP answer to ${request}: ${JSON.stringify(answer.slice(0, 80))}`);
      continue;
    }
    counts.set(status, (counts.get(status) ?? 0) + 1);
    if (Number(status) >= 400 && !/x-upstream: a/i.test(final)) {
      if (!/"code":"DEVSTACK_[A-Z_]+"/.test(final)) t.fail(`${status} without a JSON code for ${request}`);
    }
  }
  t.pass(`300 hostile requests answered: ${JSON.stringify([...counts])}`);
  t.equal((await send(s.addresses.outbound!.port, { headers: { host: 'a', 'uber-ctx-key': 'f' } })).status, 200, 'still routing afterwards');
});

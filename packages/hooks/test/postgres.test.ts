/*
 * `devstack-hooks postgres create|drop` against a real PostgreSQL (Debian's package, started by
 * the test in a temporary directory on 127.0.0.1), and the fake Kubernetes API for the secret.
 * Without PostgreSQL the file fails in CI (CI=true) and is skipped, with the reason, elsewhere.
 */
import { createServer } from 'node:net';
import t from 'tap';
import pg from 'pg';
import { createDatabase, dropDatabase, markerOf, TemplateBusyError } from '@devstack/hooks';
import { done, fake, NS, run, spawnCli, writes } from './helpers.ts';
import { postgresMissing, startPostgres, type Postgres } from './postgres-server.ts';

const missing = postgresMissing();
if (missing !== undefined) {
  if (process.env['CI'] === 'true') t.fail(`PostgreSQL is needed in CI: ${missing}`);
  else t.plan(0, `skipped: ${missing}`);
} else {
  const server = await startPostgres(t);
  await server.query('postgres', 'CREATE ROLE app LOGIN');
  await server.query('postgres', 'CREATE DATABASE orders OWNER app');
  await server.query('orders', 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); ALTER TABLE items OWNER TO app');
  await server.query('orders', "INSERT INTO items VALUES (1, 'apple'), (2, 'pear'), (3, 'plum')");
  register(server);
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const errorOf = (r: Awaited<ReturnType<typeof run>>) => r.lines.find((l) => l['level'] === 'error');

function register(server: Postgres): void {
  const env = server.env;
  const items = async (db: string) => (await server.query(db, 'SELECT id, name FROM items ORDER BY id')).map((r) => `${r['id']}:${r['name']}`);
  const databases = async () => (await server.query('postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'orders%' ORDER BY datname")).map((r) => r['datname'] as string);
  const info = async (db: string) => (await server.query('postgres', "SELECT r.rolname AS owner, shobj_description(d.oid, 'pg_database') AS comment FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE datname = $1", [db]))[0];

  t.test('create copies the template tables and rows, owned by the app role and marked; a rerun changes nothing', async (t) => {
    const first = await spawnCli(['postgres', 'create', '--database', 'orders', '--key', 'feature-1'], env);
    t.equal(first.code, 0, first.stderr);
    t.match(done(first), { command: 'postgres create', name: 'orders_feature_1', template: 'orders', owner: 'app', change: 'created' });
    t.same(await items('orders_feature_1'), ['1:apple', '2:pear', '3:plum']);
    const row = await info('orders_feature_1');
    t.equal(row?.['owner'], 'app', "the template's owner: the app's role");
    t.same(markerOf(row?.['comment'] as string), { by: 'devstack-hooks', database: 'orders', template: 'orders', key: 'feature-1' });

    // The copy is its own database: a change there is not seen by the base, nor undone by a rerun.
    await server.query('orders_feature_1', "INSERT INTO items VALUES (4, 'fig')");
    const again = await run(['postgres', 'create', '--database', 'orders', '--key', 'feature-1'], env);
    t.equal(again.code, 0, again.stderr);
    t.match(done(again), { change: 'unchanged', owner: 'app' });
    t.same(await items('orders_feature_1'), ['1:apple', '2:pear', '3:plum', '4:fig']);
    t.same(await items('orders'), ['1:apple', '2:pear', '3:plum']);
  });

  t.test('five copies at once from one template all succeed', async (t) => {
    const keys = ['c1', 'c2', 'c3', 'c4', 'c5'];
    const outcomes = await Promise.all(keys.map((key) => createDatabase({ database: 'orders', key, connection: server.config(), retry: { baseMs: 5, capMs: 50 } })));
    t.same(outcomes.map((o) => o.change), ['created', 'created', 'created', 'created', 'created']);
    for (const key of keys) t.same(await items(`orders_${key}`), ['1:apple', '2:pear', '3:plum'], key);
    // And five at once of one copy: one creates it, the others find it made.
    const same = await Promise.all(keys.map(() => createDatabase({ database: 'orders', key: 'same', connection: server.config(), retry: { baseMs: 5, capMs: 50 } })));
    t.same(same.map((o) => o.change).sort(), ['created', 'unchanged', 'unchanged', 'unchanged', 'unchanged']);
    for (const key of [...keys, 'same']) t.equal((await dropDatabase({ database: 'orders', key, connection: server.config() })).change, 'dropped');
  });

  t.test('a template in use is retried, then a clear error that says why', async (t) => {
    // A session on the template, as the base app keeps one: CREATE DATABASE refuses to copy it
    // (after waiting 5 s itself). The two cases run side by side, on two templates, so the file
    // waits for PostgreSQL once.
    await server.query('postgres', 'CREATE DATABASE held TEMPLATE orders');
    const holder = new pg.Client(server.config('orders'));
    const stays = new pg.Client(server.config('held'));
    await Promise.all([holder.connect(), stays.connect()]);
    t.teardown(() => stays.end());
    let released = false;
    const sleeps: number[] = [];
    const retried = createDatabase({
      database: 'orders',
      key: 'busy',
      connection: server.config(),
      retry: {
        sleep: async (ms) => {
          sleeps.push(ms);
          if (!released) {
            released = true;
            await holder.end();
          }
        },
      },
    });
    const refused = createDatabase({ database: 'orders', key: 'busy2', template: 'held', connection: server.config(), retry: { attempts: 1 } }).catch((e: unknown) => e);
    const [outcome, error] = await Promise.all([retried, refused]);
    t.match(outcome, { name: 'orders_busy', change: 'created', attempts: 2 });
    t.equal(sleeps.length, 1, 'one retry, after the template was let go');
    t.type(error, TemplateBusyError);
    t.match(error, {
      code: 'DEVSTACK_HOOK_PG_TEMPLATE_BUSY',
      attempts: 1,
      sessions: 1,
      message: /create the database orders_busy2 from held: the template stayed in use by other sessions through 1 attempt \(.*SQLSTATE 55006: source database "held" is being accessed by other users; 1 session\(s\) on held now\)\. PostgreSQL copies a template only while no one else is connected to it/,
    });
    t.notOk((await databases()).includes('orders_busy2'));
    t.equal((await dropDatabase({ database: 'orders', key: 'busy', connection: server.config() })).change, 'dropped');
  });

  t.test("--template and --owner; the URL in the copy's secret points at the copy", async (t) => {
    const { api, kubeconfig } = await fake(t);
    await server.query('postgres', 'CREATE ROLE tester LOGIN');
    await server.query('postgres', 'CREATE DATABASE orders_seed OWNER app TEMPLATE orders');
    await server.query('orders_seed', "INSERT INTO items VALUES (10, 'seeded')");
    const url = `postgres://app:pa%24s-SECRET@127.0.0.1:${server.port}/orders?sslmode=disable&application_name=web`;
    api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders-feature-2', namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'devstack-hooks' } }, type: 'Opaque', data: { DATABASE_URL: b64(url), OTHER: b64('x') } });
    const args = ['postgres', 'create', '--database', 'orders', '--key', 'feature-2', '--template', 'orders_seed', '--owner', 'tester', '--secret', 'orders-feature-2', '--kubeconfig', kubeconfig, '--namespace', NS];
    const r = await run(args, env);
    t.equal(r.code, 0, r.stderr);
    t.match(done(r), { name: 'orders_feature_2', template: 'orders_seed', owner: 'tester', change: 'created', secret: 'updated' });
    t.notMatch(r.stdout + r.stderr, /SECRET|pa%24s|cGEl/, 'no password in the logs');
    const secret = api.get({ apiVersion: 'v1', kind: 'Secret', name: 'orders-feature-2', namespace: NS }) as unknown as { data: Record<string, string> };
    const copyUrl = Buffer.from(secret.data['DATABASE_URL']!, 'base64').toString();
    t.equal(copyUrl, `postgres://app:pa%24s-SECRET@127.0.0.1:${server.port}/orders_feature_2?sslmode=disable&application_name=web`);
    t.equal(secret.data['OTHER'], b64('x'), 'the other keys stay');
    // The app connects with it and finds the template's rows.
    const app = new pg.Client({ connectionString: copyUrl });
    await app.connect();
    t.same((await app.query('SELECT name FROM items ORDER BY id')).rows.map((row) => row['name']), ['apple', 'pear', 'plum', 'seeded']);
    await app.end();
    t.equal((await info('orders_feature_2'))?.['owner'], 'tester');

    const count = writes(api).length;
    t.match(done(await run(args, env)), { change: 'unchanged', secret: 'unchanged' });
    t.equal(writes(api).length, count, 'the rerun wrote nothing');
    // Another owner on a rerun: brought in line.
    t.match(done(await run(args.map((a) => (a === 'tester' ? 'app' : a)), env)), { change: 'updated', owner: 'app' });

    // A missing secret, or a value that is no database URL: exit 1, the value not shown.
    const none = await run([...args.slice(0, -6), '--secret', 'nope', '--kubeconfig', kubeconfig, '--namespace', NS], env);
    t.equal(none.code, 1);
    t.match(errorOf(none), { code: 'DEVSTACK_HOOK_NOT_FOUND', error: /Secret team-a\/nope does not exist/ });
    api.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'odd', namespace: NS }, data: { DATABASE_URL: b64('mysql://u:HIDDEN@h/x') } });
    const odd = await run([...args.slice(0, -6), '--secret', 'odd', '--kubeconfig', kubeconfig, '--namespace', NS], env);
    t.equal(odd.code, 1);
    t.match(errorOf(odd), { code: 'DEVSTACK_HOOK_SECRET_VALUE', error: /DATABASE_URL in Secret team-a\/odd: neither a postgres:\/\/ URL nor a key=value connection string \(the value is not shown\)/ });
    t.notMatch(odd.stdout + odd.stderr, /HIDDEN|mysql/);
    t.equal((await dropDatabase({ database: 'orders', key: 'feature-2', connection: server.config() })).change, 'dropped');
  });

  t.test('drop removes only what it made, ending its sessions', async (t) => {
    t.equal((await run(['postgres', 'create', '--database', 'orders', '--key', 'gone'], env)).code, 0);
    // Someone else's database under a copy's name, and one this tool made for another database
    // and key that collide in the name (orders_a + b and orders + a-b are both orders_a_b).
    await server.query('postgres', 'CREATE DATABASE orders_other TEMPLATE orders');
    t.equal((await run(['postgres', 'create', '--database', 'orders_a', '--key', 'b', '--template', 'orders'], env)).code, 0);

    const foreign = await run(['postgres', 'drop', '--database', 'orders', '--key', 'other'], env);
    t.equal(foreign.code, 1);
    t.match(errorOf(foreign), { code: 'DEVSTACK_HOOK_NOT_OWNED', error: /orders_other exists and was not made by devstack-hooks .*no devstack: comment/ });
    const collide = await run(['postgres', 'drop', '--database', 'orders', '--key', 'a-b'], env);
    t.equal(collide.code, 1);
    t.match(errorOf(collide), { code: 'DEVSTACK_HOOK_NOT_OWNED', error: /made by devstack-hooks for --database orders_a --key b/ });
    const create = await run(['postgres', 'create', '--database', 'orders', '--key', 'other'], env);
    t.equal(create.code, 1, 'create refuses it too');
    t.match(errorOf(create), { code: 'DEVSTACK_HOOK_NOT_OWNED' });

    const app = new pg.Client(server.config('orders_gone'));
    await app.connect();
    app.on('error', () => undefined);
    const dropped = await spawnCli(['postgres', 'drop', '--database', 'orders', '--key', 'gone'], env);
    t.equal(dropped.code, 0, dropped.stderr);
    t.match(done(dropped), { command: 'postgres drop', name: 'orders_gone', change: 'dropped', terminated: 1 });
    await app.end().catch(() => undefined);
    t.match(done(await run(['postgres', 'drop', '--database', 'orders', '--key', 'gone'], env)), { change: 'absent' });
    const left = await databases();
    t.ok(left.includes('orders') && left.includes('orders_other') && left.includes('orders_a_b') && !left.includes('orders_gone'), left.join(' '));
    t.same(await items('orders'), ['1:apple', '2:pear', '3:plum'], 'the template is untouched');
  });

  t.test('a hostile key, name, template, owner or admin database is refused before any connection', async (t) => {
    // A port that counts connections: any attempt to reach PostgreSQL would show here.
    let connections = 0;
    const trap = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => trap.close(() => resolve())));
    const trapEnv = { PGHOST: '127.0.0.1', PGPORT: String((trap.address() as { port: number }).port), PGUSER: 'postgres' };
    const cases: [string[], RegExp][] = [
      [['--database', 'orders', '--key', 'x";DROP DATABASE orders;--'], /--key: .* is not a routing key/],
      [['--database', 'orders"; DROP DATABASE orders; --', '--key', 'f1'], /--database: .* is not a PostgreSQL name/],
      [['--database', 'orders', '--key', 'base'], /--key: "base" is not a routing key/],
      [['--database', 'orders', '--key', 'f1', '--template', 'orders" OWNER postgres --'], /--template: .* is not a PostgreSQL name/],
      [['--database', 'orders', '--key', 'f1', '--owner', 'x y'], /--owner: .* is not a PostgreSQL name/],
      [['--database', 'o'.repeat(60), '--key', 'feature1'], /is not a PostgreSQL name .*\(the copy's name\)/],
      [['--database', 'orders', '--key', 'f1', '--template', 'orders_f1'], /--template: must name another database than the copy/],
    ];
    for (const [args, problem] of cases) {
      const r = await run(['postgres', 'create', ...args], trapEnv);
      t.equal(r.code, 2, args.join(' '));
      t.match(r.stderr, problem);
      t.same(r.lines, [], 'no log line: nothing was attempted');
    }
    const drop = await run(['postgres', 'drop', '--database', 'orders', '--key', 'a`b'], trapEnv);
    t.equal(drop.code, 2);
    const self = await run(['postgres', 'create', '--database', 'orders', '--key', 'f1'], { ...trapEnv, PGDATABASE: 'orders' });
    t.equal(self.code, 2);
    t.match(self.stderr, /PGDATABASE: the admin connection's database must not be the template/);
    const port = await run(['postgres', 'drop', '--database', 'orders', '--key', 'f1'], { ...trapEnv, PGPORT: '99999', PGSSLMODE: 'sometimes' });
    t.equal(port.code, 2);
    t.match(port.stderr, /PGPORT: expected a port from 1 to 65535/);
    t.match(port.stderr, /PGSSLMODE: expected one of disable, allow, prefer, require, verify-ca, verify-full, no-verify/);
    t.equal(connections, 0, 'no connection was made');
    // The same trap with valid values: a connection is tried (and fails as a PostgreSQL error, exit 1).
    const tried = await run(['postgres', 'drop', '--database', 'orders', '--key', 'f1'], trapEnv);
    t.equal(tried.code, 1);
    t.match(errorOf(tried), { code: 'DEVSTACK_HOOK_POSTGRES', error: /connect to PostgreSQL at 127\.0\.0\.1:\d+ as postgres/ });
    t.ok(connections > 0, 'the trap does see connections');
  });
}

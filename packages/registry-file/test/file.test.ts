import t from 'tap';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { EventEmitter } from 'node:events';
import { StaticSource } from '@devstack/core';
import { FileSource, RegistryFileError, parseRegistry } from '@devstack/registry-file';
import { RegistryValidationError, buildSnapshot, resolve, type Snapshot } from '@devstack/core';

const V1 = `
services:
  orders:
    base: http://127.0.0.1:7002      # one URL or a list
    features:
      feature2: http://127.0.0.1:7102
`;

function nextSnapshot(source: FileSource): Promise<Snapshot> {
  return new Promise((res) => {
    const off = source.subscribe((s) => {
      off();
      res(s);
    });
  });
}

function nextError(source: FileSource): Promise<Error> {
  return new Promise((res) => {
    const off = source.onError((e) => {
      off();
      res(e);
    });
  });
}

t.test('publishes the file, then every valid change', async (t) => {
  const dir = t.testdir({ 'registry.yaml': V1 });
  const path = join(dir, 'registry.yaml');
  const source = new FileSource({ path, debounceMs: 5 });
  t.teardown(() => source.close());
  const first = await source.start();
  t.equal(first.version, 1);
  t.equal(resolve(first, 'orders', 'feature2').lane?.ready[0]?.origin, 'http://127.0.0.1:7102');
  t.equal(source.current(), first);

  const changed = nextSnapshot(source);
  await writeFile(path, V1.replace('7102', '7103'));
  const second = await changed;
  t.equal(second.version, 2);
  t.equal(source.current(), second);
  t.equal(resolve(second, 'orders', 'feature2').lane?.ready[0]?.origin, 'http://127.0.0.1:7103');
  t.equal(resolve(first, 'orders', 'feature2').lane?.ready[0]?.origin, 'http://127.0.0.1:7102', 'old snapshots never change');

  // An editor's write-to-temp-and-rename is seen too.
  const renamed = nextSnapshot(source);
  await writeFile(join(dir, 'tmp.yaml'), '{"services":{"orders":{"base":"http://127.0.0.1:7009"}}}');
  await rename(join(dir, 'tmp.yaml'), path);
  t.equal(resolve(await renamed, 'orders', 'feature2').reason, 'unknown-key');
});

t.test('an invalid edit keeps the last good snapshot and says what is wrong', async (t) => {
  const dir = t.testdir({ 'registry.yaml': V1 });
  const path = join(dir, 'registry.yaml');
  const source = new FileSource({ path, debounceMs: 5 });
  t.teardown(() => source.close());
  const good = await source.start();
  let published = 0;
  source.subscribe(() => published++);

  const bad = nextError(source);
  await writeFile(path, 'services:\n  orders:\n    base: ftp://nope\n');
  const error = (await bad) as RegistryValidationError;
  t.type(error, RegistryValidationError);
  t.equal(error.code, 'DEVSTACK_INVALID_REGISTRY');
  t.match(error.message, path);
  t.same(error.problems, ['services.orders.base: "ftp://nope" must use http or https']);
  t.equal(source.current(), good);

  const syntax = nextError(source);
  await writeFile(path, 'services:\n  orders: [unclosed\n');
  const syntaxError = (await syntax) as RegistryValidationError;
  t.match(syntaxError.problems[0], /^line \d+, column \d+: /);
  t.equal(source.current(), good);

  const fixed = nextSnapshot(source);
  await writeFile(path, V1);
  t.equal((await fixed).version, 2, 'a fixed file is published again');
  t.equal(published, 1);
});

t.test('reload() re-reads now and says what came of it; a still-invalid file is reported again', async (t) => {
  const dir = t.testdir({ 'registry.yaml': V1 });
  const path = join(dir, 'registry.yaml');
  // A long debounce keeps the watcher out of the way: only reload() reads the file here.
  const source = new FileSource({ path, debounceMs: 60_000 });
  t.teardown(() => source.close());
  const first = await source.start();
  t.equal(await source.reload(), 'unchanged');
  t.equal(source.current(), first);

  await writeFile(path, V1.replace('7102', '7104'));
  t.equal(await source.reload(), 'published');
  t.equal(source.current()?.version, 2);
  t.equal(resolve(source.current()!, 'orders', 'feature2').lane?.ready[0]?.origin, 'http://127.0.0.1:7104');

  const errors: Error[] = [];
  source.onError((e) => errors.push(e));
  await writeFile(path, 'services:\n  orders:\n    base: ftp://nope\n');
  t.equal(await source.reload(), 'refused');
  t.equal(await source.reload(), 'refused', 'asking again about the same bad file refuses again');
  t.equal(errors.length, 2, 'and says why each time');
  t.same((errors[1] as RegistryValidationError).problems, ['services.orders.base: "ftp://nope" must use http or https']);
  t.equal(source.current()?.version, 2, 'the last good snapshot stays');

  await writeFile(path, V1);
  t.equal(await source.reload(), 'published');
  t.equal(source.current()?.version, 3);
});

t.test('a missing or invalid file fails start with a clear error', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'services: 3\n', 'dup.yaml': 'services: {}\nservices: {}\n' });
  await t.rejects(new FileSource({ path: join(dir, 'missing.yaml') }).start(), RegistryFileError);
  await t.rejects(new FileSource({ path: join(dir, 'missing.yaml') }).start(), { code: 'DEVSTACK_REGISTRY_FILE', message: /no such file/ });
  await t.rejects(new FileSource({ path: join(dir, 'bad.yaml') }).start(), { code: 'DEVSTACK_INVALID_REGISTRY' });
  await t.rejects(new FileSource({ path: join(dir, 'dup.yaml') }).start(), { code: 'DEVSTACK_INVALID_REGISTRY', message: /line 2/ });
});

t.test('parseRegistry takes JSON as well as YAML', async (t) => {
  const s = parseRegistry('{"services":{"a":{"base":["http://127.0.0.1:1","http://127.0.0.1:2"]}}}', { source: 'x.json' });
  t.equal(s.services.get('a')?.base.targets.length, 2);
});

t.test('StaticSource publishes to subscribers; a throwing listener does not stop the rest', async (t) => {
  const a = buildSnapshot({ services: { a: { base: 'http://127.0.0.1:1' } } });
  const b = buildSnapshot({ services: { b: { base: 'http://127.0.0.1:1' } } }, { version: 2 });
  const source = new StaticSource(a);
  t.equal(await source.start(), a);
  const seen = new EventEmitter();
  source.subscribe(() => {
    throw new Error('consumer bug');
  });
  source.subscribe((s) => seen.emit('s', s));
  const got = once(seen, 's');
  source.publish(b);
  t.same(await got, [b]);
  t.equal(source.current(), b);
  await source.close();
});

/** Timers that fire only when the test advances them. */
class FakeTimers {
  time = 0;
  scheduled = 0;
  fired = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  #id = 0;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.scheduled++;
    this.#timers.set(++this.#id, { at: this.time + ms, fn });
    return this.#id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number[] {
    return [...this.#timers.values()].map((x) => x.at);
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.time = due[1].at;
      this.fired++;
      due[1].fn();
    }
    this.time = end;
  }
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (ok()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`never happened: ${what}`);
}

t.test('a file rewritten without a pause is still read at least every maxDelayMs', async (t) => {
  const dir = t.testdir({ 'registry.yaml': V1 });
  const path = join(dir, 'registry.yaml');
  const timers = new FakeTimers();
  const source = new FileSource({ path, debounceMs: 20, maxDelayMs: 100, timers });
  t.teardown(() => source.close());
  await source.start();
  let published = 0;
  source.subscribe(() => published++);
  // A write every 15 ms (of the fake clock) for 600 ms: never the 20 ms of quiet the debounce waits for.
  for (let i = 0; i < 40; i++) {
    const scheduled = timers.scheduled;
    await writeFile(path, V1.replace('7102', String(7200 + i)));
    await until('the change is seen', () => timers.scheduled > scheduled);
    const fired = timers.fired;
    timers.advance(15);
    if (timers.fired > fired) await until('the file is read', () => published === timers.fired);
  }
  t.ok(published >= 4, `read every maxDelayMs while the writes went on (${published} times in 600 ms), not only after them`);
});

const STACKED = `
stacks:
  f2: feature2          # f2 is built on feature2, not merged yet
services:
  orders:
    base: http://127.0.0.1:7002
    features:
      feature2: http://127.0.0.1:7102
  web:
    base: http://127.0.0.1:7001
    features:
      f2: http://127.0.0.1:7201
`;

t.test('top-level stacks: a key goes to its own copy, else its parent’s, else base', async (t) => {
  const dir = t.testdir({ 'registry.yaml': STACKED });
  const path = join(dir, 'registry.yaml');
  const source = new FileSource({ path, debounceMs: 5 });
  t.teardown(() => source.close());
  const first = await source.start();
  t.same(Object.fromEntries(first.stacks), { f2: 'feature2' });
  t.same([resolve(first, 'web', 'f2').lane?.name, resolve(first, 'orders', 'f2').lane?.name], ['f2', 'feature2']);
  t.equal(resolve(first, 'orders', 'f2').reason, 'stacked');

  // A cycle is not a broken file: it is reported with the snapshot and its keys resolve unstacked.
  const cycled = nextSnapshot(source);
  await writeFile(path, STACKED.replace('f2: feature2 ', 'f2: feature2\n  feature2: f2'));
  const second = await cycled;
  t.same(second.stackProblems.map((p) => [p.key, p.problem]), [['f2', 'cycle'], ['feature2', 'cycle']]);
  t.same([resolve(second, 'orders', 'f2').reason, resolve(second, 'orders', 'f2').lane?.name], ['no-copy', 'base']);

  // A stack that names no key is refused with the file, and the last good snapshot stays.
  const refused = nextError(source);
  await writeFile(path, STACKED.replace('f2: feature2 ', 'f2: Feature2\n  base: feature2 '));
  const error = (await refused) as RegistryValidationError;
  t.type(error, RegistryValidationError);
  t.match(error.problems, [/^stacks\.f2: must name a routing key/, /^stacks\.base: "base" is reserved/]);
  t.equal(source.current(), second);
});

t.test('stacks in JSON, and a stacks field that is not a mapping', async (t) => {
  const s = parseRegistry('{"stacks":{"f2":"feature2"},"services":{"orders":{"base":"http://127.0.0.1:7002","features":{"feature2":"http://127.0.0.1:7102"}}}}', { source: 'inline' });
  t.equal(resolve(s, 'orders', 'f2').lane?.name, 'feature2');
  const error = t.throws(() => parseRegistry('stacks: [f2]\nservices: {}\n', { source: 'inline' })) as RegistryValidationError;
  t.same(error.problems, ['stacks: expected a mapping of routing key to the key it stacks on']);
});

import t from 'tap';
import { createKeyCodec, mergeBaggage, baggageValues, ConfigError, type HeaderBag, type MutableHeaderBag } from '@devstack/core';

const codec = createKeyCodec({ domains: ['example.com', 'example.localhost'] });

function read(headers: HeaderBag) {
  const r = codec.read(headers);
  return [r.key, r.carrier, r.problem];
}

t.test('every carrier', async (t) => {
  t.same(read({ 'uber-ctx-key': 'feature1' }), ['feature1', 'header', undefined]);
  t.same(read({ baggage: 'uber-ctx-key=feature1' }), ['feature1', 'baggage', undefined]);
  t.same(read({ baggage: 'a=1, uber-ctx-key = feature1 ;prop=x, b=2' }), ['feature1', 'baggage', undefined]);
  t.same(read({ 'uberctx-uber-ctx-key': 'feature1' }), ['feature1', 'jaeger', undefined]);
  t.same(read({ 'uberctx-uber-ctx-key': 'feature%31' }), ['feature1', 'jaeger', undefined], 'jaeger values are percent-decoded');
  t.same(read({ host: 'feature1.example.com' }), ['feature1', 'host', undefined]);
  t.same(read({ host: 'example.com' }), [undefined, undefined, undefined]);
  t.same(read({}), [undefined, undefined, undefined]);
  t.same(read({ baggage: 'other=1' }), [undefined, undefined, undefined], 'baggage without our entry is not a carrier');
});

t.test('precedence: header > baggage > jaeger > host; the first present carrier decides alone', async (t) => {
  const all = { 'uber-ctx-key': 'a', baggage: 'uber-ctx-key=b', 'uberctx-uber-ctx-key': 'c', host: 'd.example.com' };
  t.same(read(all), ['a', 'header', undefined]);
  t.same(read({ ...all, 'uber-ctx-key': undefined }), ['b', 'baggage', undefined]);
  t.same(read({ baggage: 'x=1', 'uberctx-uber-ctx-key': 'c', host: 'd.example.com' }), ['c', 'jaeger', undefined]);
  t.same(read({ host: 'd.example.com', baggage: 'x=1' }), ['d', 'host', undefined]);
  t.same(read({ 'uber-ctx-key': 'Bad Key', baggage: 'uber-ctx-key=b' }), [undefined, 'header', 'malformed'], 'an invalid top carrier does not fall through');
});

t.test('conflicting and repeated values', async (t) => {
  t.same(read({ 'uber-ctx-key': 'a, b' }), [undefined, 'header', 'conflict'], 'comma-joined');
  t.same(read({ 'uber-ctx-key': ['a', 'b'] }), [undefined, 'header', 'conflict'], 'two headers');
  t.same(read({ 'uber-ctx-key': ['a', 'a'] }), ['a', 'header', undefined], 'two equal headers agree');
  t.same(read({ 'uber-ctx-key': 'a, a' }), ['a', 'header', undefined], 'equal joined values agree');
  t.same(read({ baggage: 'uber-ctx-key=a,uber-ctx-key=b' }), [undefined, 'baggage', 'conflict'], 'two baggage entries');
  t.same(read({ baggage: ['uber-ctx-key=a', 'x=1,uber-ctx-key=b'] }), [undefined, 'baggage', 'conflict'], 'two baggage headers');
  t.same(read({ baggage: 'uber-ctx-key=a, uber-ctx-key=a' }), ['a', 'baggage', undefined]);
  t.same(read({ 'uberctx-uber-ctx-key': ['a', 'b'] }), [undefined, 'jaeger', 'conflict']);
});

t.test('hostile and malformed keys are invalid, never a key', async (t) => {
  const bad = ['feat`ure', 'feat"ure', "feat'ure", 'feat\r\nure', 'fea ture', 'Feature1', 'x'.repeat(64), '', '-a', 'a-', 'a.b', 'a_b', 'ключ', '%66eature1'];
  for (const value of bad) {
    t.same(read({ 'uber-ctx-key': value }), [undefined, 'header', 'malformed'], `header ${JSON.stringify(value)}`);
    t.same(read({ baggage: `uber-ctx-key=${encodeURIComponent(value)}` }), value === '' ? [undefined, undefined, undefined] : [undefined, 'baggage', 'malformed'], `baggage ${JSON.stringify(value)}`);
  }
  t.same(read({ 'uber-ctx-key': 'x'.repeat(63) }), ['x'.repeat(63), 'header', undefined], '63 chars is the limit');
  t.same(read({ 'uber-ctx-key': ' feature1 ' }), ['feature1', 'header', undefined], 'optional whitespace is trimmed');
});

t.test('malformed percent-encoding never throws; the entry is dropped', async (t) => {
  t.same(read({ baggage: 'uber-ctx-key=%E0%A4%A' }), [undefined, undefined, undefined]);
  t.same(read({ baggage: 'uber-ctx-key=%E0%A4%A,uber-ctx-key=feature1' }), ['feature1', 'baggage', undefined]);
  t.same(read({ baggage: '%ZZ=1,uber-ctx-key=feature1' }), ['feature1', 'baggage', undefined]);
  t.same(read({ 'uberctx-uber-ctx-key': '%ZZ' }), [undefined, 'jaeger', 'malformed']);
  t.same(baggageValues('uber-ctx-key=%', 'uber-ctx-key'), []);
});

t.test('Host carrier', async (t) => {
  const rows: Array<[string, string | undefined, string | undefined]> = [
    ['feature1.example.com', 'feature1', undefined],
    ['feature1.example.com:8080', 'feature1', undefined],
    ['feature1.example.com.', 'feature1', undefined],
    ['feature1.example.com.:443', 'feature1', undefined],
    ['FEATURE1.Example.COM', 'feature1', undefined],
    ['feature1.example.localhost:8080', 'feature1', undefined],
    ['example.com', undefined, undefined],
    ['example.com:8080', undefined, undefined],
    ['feature1.other.org', undefined, undefined],
    ['feature1.notexample.com', undefined, undefined],
    ['a.b.example.com', undefined, 'malformed'],
    ['-bad.example.com', undefined, 'malformed'],
    ['[::1]:8080', undefined, undefined],
    ['feature1.example.com:http', undefined, undefined],
    ['', undefined, undefined],
  ];
  for (const [host, key, problem] of rows) {
    const r = codec.readHost(host);
    t.equal(r.key, key, `${host}: key`);
    t.equal(r.problem, problem, `${host}: problem`);
  }
  t.equal(createKeyCodec().read({ host: 'feature1.example.com' }).key, undefined, 'no domains: Host is not read');
  const nested = createKeyCodec({ domains: ['example.com', 'app.example.com'] });
  t.equal(nested.readHost('k.app.example.com').key, 'k', 'the longest domain wins');
});

t.test('configurable key name', async (t) => {
  const old = createKeyCodec({ name: 'dev-serve-user' });
  t.equal(old.read({ 'dev-serve-user': 'alice' }).key, 'alice');
  t.equal(old.read({ 'uberctx-dev-serve-user': 'alice' }).key, 'alice');
  t.equal(old.read({ baggage: 'dev-serve-user=alice' }).key, 'alice');
  t.equal(old.read({ 'uber-ctx-key': 'alice' }).key, undefined, 'the default name is not read');
  const h: MutableHeaderBag = {};
  old.write(h, 'alice');
  t.same(h, { 'dev-serve-user': 'alice', baggage: 'dev-serve-user=alice' });
  t.throws(() => createKeyCodec({ name: 'Bad Name' }), ConfigError);
  try {
    createKeyCodec({ domains: ['exa mple.com', '-x.com'] });
    t.fail('bad domains must throw');
  } catch (e) {
    t.equal((e as ConfigError).problems.length, 2, 'one problem per bad domain');
  }
});

t.test('injection writes the plain header and merges baggage', async (t) => {
  const h: MutableHeaderBag = { baggage: 'a=1,uber-ctx-key=old;p=1, b=2', 'uberctx-uber-ctx-key': 'old' };
  codec.write(h, 'feature1');
  t.same(h, { 'uber-ctx-key': 'feature1', baggage: 'a=1,uber-ctx-key=feature1, b=2', 'uberctx-uber-ctx-key': 'feature1' });
  const empty: MutableHeaderBag = {};
  codec.write(empty, 'feature1');
  t.same(empty, { 'uber-ctx-key': 'feature1', baggage: 'uber-ctx-key=feature1' });
  t.equal(mergeBaggage('a=1,b=2', 'uber-ctx-key', 'k'), 'a=1,b=2,uber-ctx-key=k', 'appended after the others');
  t.equal(mergeBaggage('uber-ctx-key=x,a=1,uber-ctx-key=y', 'uber-ctx-key', 'k'), 'uber-ctx-key=k,a=1', 'first replaced in place, repeats dropped');
  t.equal(mergeBaggage(['a=1', 'b=2'], 'uber-ctx-key', 'k'), 'a=1,b=2,uber-ctx-key=k', 'repeated headers are joined');
  t.equal(mergeBaggage('%ZZ=1, a=%E0', 'uber-ctx-key', 'k'), '%ZZ=1, a=%E0,uber-ctx-key=k', 'malformed foreign entries kept as they were');
});

t.test('large baggage is preserved byte for byte on re-injection', async (t) => {
  const others = Array.from({ length: 64 }, (_, i) => `key${i}=${'v'.repeat(120)}%20${i};meta=${i}`);
  const header = others.join(',');
  t.ok(header.length >= 8192, `header is ${header.length} bytes`);
  const withOurs = `${header},uber-ctx-key=feature1`;
  t.equal(codec.read({ baggage: withOurs }).key, 'feature1', 'our entry is read past 8192 bytes');
  const h: MutableHeaderBag = { baggage: withOurs };
  codec.write(h, 'feature2');
  t.equal(h['baggage'], `${header},uber-ctx-key=feature2`);
  const fresh: MutableHeaderBag = { baggage: header };
  codec.write(fresh, 'feature1');
  t.equal(fresh['baggage'], withOurs);
});

t.test('strip removes the key from every header carrier', async (t) => {
  const h: MutableHeaderBag = { 'uber-ctx-key': 'a', baggage: 'uber-ctx-key=a,x=1', 'uberctx-uber-ctx-key': 'a', other: 'y' };
  codec.strip(h);
  t.same(h, { baggage: 'x=1', other: 'y' });
  const only: MutableHeaderBag = { baggage: 'uber-ctx-key=a' };
  codec.strip(only);
  t.same(only, {}, 'an emptied baggage header is removed');
});

/* The pure parts of the sns and postgres commands: names, markers, URLs, policies. */
import t from 'tap';
import { copyDatabaseName, databaseMarker, databaseUrlFor, filterPolicy, markerOf, policyStatement, SecretValueError } from '@devstack/hooks';

t.test("a copy's database name: '-' in the key as '_'", async (t) => {
  t.equal(copyDatabaseName('orders', 'feature-1'), 'orders_feature_1');
  t.equal(copyDatabaseName('Orders', 'f1'), 'Orders_f1');
});

t.test('the marker: written as JSON after devstack:, read back only when it is one', async (t) => {
  const text = databaseMarker({ database: 'orders', template: 'seed', key: 'f1' });
  t.equal(text, 'devstack:{"by":"devstack-hooks","database":"orders","template":"seed","key":"f1"}');
  t.same(markerOf(text), { by: 'devstack-hooks', database: 'orders', template: 'seed', key: 'f1' });
  for (const other of [null, undefined, '', 'a comment', 'devstack:', 'devstack:null', 'devstack:{"by":"someone","database":"orders","key":"f1"}', 'devstack:{"by":"devstack-hooks","key":"f1"}']) t.equal(markerOf(other), undefined, String(other));
});

t.test("the database URL of a copy: its database changed, the rest kept", async (t) => {
  const to = (v: string) => databaseUrlFor(v, 'orders_f1', 'DATABASE_URL');
  t.equal(to('postgres://app:p%40ss@db:5432/orders?sslmode=require'), 'postgres://app:p%40ss@db:5432/orders_f1?sslmode=require');
  t.equal(to('postgresql://db/orders'), 'postgresql://db/orders_f1');
  t.equal(to('postgres://db'), 'postgres://db/orders_f1');
  t.equal(to('postgres://app@db/?dbname=orders&sslmode=disable'), 'postgres://app@db/orders_f1?dbname=orders_f1&sslmode=disable');
  t.equal(to(' postgres://db/orders\n'), 'postgres://db/orders_f1', 'surrounding space dropped');
  t.equal(to('host=db user=app dbname=orders sslmode=require'), 'host=db user=app dbname=orders_f1 sslmode=require');
  t.equal(to("host=db dbname='orders x' port=5432"), 'host=db dbname=orders_f1 port=5432');
  t.equal(to('host=db user=app'), 'host=db user=app dbname=orders_f1');
  for (const bad of ['mysql://u:HIDDEN@h/x', 'HIDDEN', '', 'postgres://[bad']) {
    t.throws(() => to(bad), SecretValueError, JSON.stringify(bad));
    try {
      to(bad);
    } catch (error) {
      t.notMatch((error as Error).message, /HIDDEN|mysql|\[bad/, 'the value is not in the message');
    }
  }
});

t.test('the filter policy and the queue policy statement', async (t) => {
  t.same(JSON.parse(filterPolicy('uber-ctx-key', 'f1')), { 'uber-ctx-key': ['f1'] });
  const a = policyStatement('arn:aws:sqs:us-east-1:1:q', 'arn:aws:sns:us-east-1:1:events');
  const b = policyStatement('arn:aws:sqs:us-east-1:1:q', 'arn:aws:sns:us-east-1:1:audit');
  t.match(a, { Sid: /^devstack-hooks-sns-[0-9a-f]{16}$/, Effect: 'Allow', Action: 'sqs:SendMessage', Resource: 'arn:aws:sqs:us-east-1:1:q', Condition: { ArnEquals: { 'aws:SourceArn': 'arn:aws:sns:us-east-1:1:events' } } });
  t.not(a['Sid'], b['Sid'], 'one statement per topic');
  t.same(policyStatement('arn:aws:sqs:us-east-1:1:q', 'arn:aws:sns:us-east-1:1:events'), a, 'the same for the same topic');
});

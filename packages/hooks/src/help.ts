/** `devstack-hooks --help`, and each command's. */
const GLOBAL = `Kubernetes (every command that reads or writes an object)
  --namespace NS            default: the pod's own, else the kubeconfig context's, else default
  --kubeconfig PATH         default: KUBECONFIG, else the pod's service account
  --request-timeout DURATION
                            each request's limit (Kubernetes, SQS, SNS, PostgreSQL): 30s,
                            500ms, 2m (default 30s, at most 10m); no answer in time is exit 1
                            (DEVSTACK_HOOK_KUBE_TIMEOUT for Kubernetes), not retried
  --max-response-size SIZE  the largest Kubernetes answer read: 8Mi (default), 512Ki, bytes;
                            a larger one is exit 1, DEVSTACK_HOOK_KUBE_BAD_RESPONSE

Every --flag VALUE can also be set by DEVSTACK_<FLAG> (upper case, '-' as '_'; for example
--key-name by DEVSTACK_KEY_NAME, --namespace by DEVSTACK_NAMESPACE); a flag wins. --set is
flags only.

Exit codes: 0 done (also when there was nothing to do), 1 a failure it explains (a missing
object, retries exhausted, an API error, no answer in time, an answer no API server gives),
2 a usage error (a bad flag or routing key; nothing was sent). Logs are JSON lines: progress on stdout, warnings and errors on stderr; secret
values are never logged.
`;

export const COMMAND_HELP: Record<string, string> = {
  'ingressroute add': `Usage: devstack-hooks ingressroute add --name ROUTE --host HOST --key KEY --service SVC [options]

Adds to the shared Traefik IngressRoute ROUTE one route, Host(HOST) && Header(KEY-NAME, KEY),
to the Service SVC, and records it in the IngressRoute's devstack.io/hook-routes annotation.
Read-modify-write with the object's resourceVersion, retried on conflicts: copies deploying at
once all end up in the route, each once. Already there: nothing changes.

  --name ROUTE              the shared IngressRoute (required)
  --host HOST               the host the route matches (required)
  --key KEY                 the copy's routing key, a DNS-1123 label (required)
  --service SVC             the copy's Service (required)
  --port PORT               the Service port, a number or a port name (default 80)
  --traefik v3|v2           rule syntax: v3 Header(...) (default), v2 Headers(...)
  --api-group GROUP         traefik.io (default) or traefik.containo.us (older Traefik CRDs)
  --key-name NAME           the header the key travels in (default uber-ctx-key)
  --priority N              the route's priority (default: Traefik's, the rule's length)
  --scheme http|https|h2c   how Traefik reaches SVC: h2c for an HTTP/2 cleartext or gRPC app
                            (default: none written; Traefik then uses http, https on port 443)
  --create                  create the IngressRoute when it does not exist (default: fail)
`,
  'ingressroute remove': `Usage: devstack-hooks ingressroute remove --name ROUTE --key KEY [options]

Removes from the shared IngressRoute ROUTE the routes this command added for KEY, and only
those (routes written by others stay, even with the same header). Nothing recorded for KEY,
or no IngressRoute: nothing to do.

  --name ROUTE              the shared IngressRoute (required)
  --key KEY                 the copy's routing key (required)
  --api-group GROUP         traefik.io (default) or traefik.containo.us
`,
  'secret clone': `Usage: devstack-hooks secret clone --from SECRET --to NEW --key KEY [options]

Copies the data of the base secret SECRET into the copy's secret NEW, labelled
app.kubernetes.io/managed-by=devstack-hooks and devstack.io/feature=KEY, annotated
janitor/ttl, then sets the --set keys. NEW already made by this command: brought up to date
(keys added to it since stay). NEW made by someone else: refused, left alone.

  --from SECRET             the base secret (required; missing: exit 1)
  --to NEW                  the copy's secret (required)
  --key KEY                 the copy's routing key (required)
  --service SVC             also label devstack.io/service=SVC
  --ttl DURATION            janitor/ttl: 30m, 6h, 7d, ... or forever (default 6h)
  --set KEY=VALUE           set a key, repeatable
`,
  'secret update': `Usage: devstack-hooks secret update --name NEW --set KEY=VALUE [--set ...] [options]

Sets keys of the existing secret NEW in place (read-modify-write with its resourceVersion,
retried on conflicts). A missing secret: exit 1.

  --name NEW                the secret (required)
  --set KEY=VALUE           set a key, repeatable (at least one)
`,
  'sqs create': `Usage: devstack-hooks sqs create --queue NAME --key KEY [options]

Creates the copy's queue NAME-KEY (orders.fifo -> orders-KEY.fifo) with the base queue NAME's
attributes (not its Policy or RedrivePolicy), over which --attributes go; an existing copy
gets its changeable attributes brought in line. With --secret, writes the queue URL into that
secret (created, labelled as the copy's, when missing).

  --queue NAME              the base queue (required; missing and no --attributes: exit 1)
  --key KEY                 the copy's routing key (required)
  --endpoint URL            an SQS-compatible endpoint (LocalStack); default AWS, or
                            AWS_ENDPOINT_URL_SQS
  --region R                default AWS_REGION, else us-east-1
  --attributes JSON         attributes over the base's, e.g. '{"VisibilityTimeout":"60"}'
  --secret NEW              write the queue URL into this secret
  --secret-key KEY          the secret's key for it (default QUEUE_URL)

AWS credentials come from the SDK's usual chain (AWS_ACCESS_KEY_ID, a web identity, ...).
`,
  'sqs delete': `Usage: devstack-hooks sqs delete --queue NAME --key KEY [options]

Deletes the copy's queue NAME-KEY. Not there: nothing to do.

  --queue NAME              the base queue (required)
  --key KEY                 the copy's routing key (required)
  --endpoint URL            an SQS-compatible endpoint (LocalStack)
  --region R                default AWS_REGION, else us-east-1
`,
  'sns subscribe': `Usage: devstack-hooks sns subscribe --topic NAME|ARN --queue NAME --key KEY [options]

Creates the copy's queue NAME-KEY as sqs create does, lets the topic send to it (a statement
in its Policy), and subscribes it to the topic with raw message delivery (the attributes reach
the consumer) and a filter policy on the key attribute: the copy's queue receives only
messages whose KEY-NAME attribute is KEY. A rerun brings each in line; nothing else changes.

  --topic NAME|ARN          the base topic (required; missing: exit 1)
  --queue NAME              the base queue, whose attributes the copy's gets (required)
  --key KEY                 the copy's routing key (required)
  --key-name NAME           the message attribute the key travels in (default uber-ctx-key)
  --endpoint URL            an SNS- and SQS-compatible endpoint (LocalStack); default AWS, or
                            AWS_ENDPOINT_URL_SNS and AWS_ENDPOINT_URL_SQS
  --region R                default AWS_REGION, else us-east-1
  --attributes JSON         queue attributes over the base queue's (not Policy)
  --secret NEW              write the copy queue's URL into this secret
  --secret-key KEY          the secret's key for it (default QUEUE_URL)

AWS credentials come from the SDK's usual chain (AWS_ACCESS_KEY_ID, a web identity, ...).
`,
  'sns unsubscribe': `Usage: devstack-hooks sns unsubscribe --topic NAME|ARN --queue NAME --key KEY [options]

Removes the copy queue's subscription to the topic, then the queue NAME-KEY (kept, without
this topic's statement, while this tool has it subscribed to another topic). A topic, a
subscription or a queue already gone: nothing to do.

  --topic NAME|ARN          the base topic (required)
  --queue NAME              the base queue (required)
  --key KEY                 the copy's routing key (required)
  --endpoint URL            an SNS- and SQS-compatible endpoint (LocalStack)
  --region R                default AWS_REGION, else us-east-1
`,
  'sns create': `Usage: devstack-hooks sns create --topic NAME --key KEY [options]

Creates the per-feature topic NAME-KEY (orders.fifo -> orders-KEY.fifo) with the base topic's
attributes (not its Policy), over which --attributes go, tagged
app.kubernetes.io/managed-by=devstack-hooks and devstack.io/feature=KEY. An existing copy it
made gets its attributes brought in line; one it did not make is refused (exit 1).

  --topic NAME              the base topic's name (required; missing and no --attributes: exit 1)
  --key KEY                 the copy's routing key (required)
  --endpoint URL            an SNS-compatible endpoint (LocalStack); default AWS, or
                            AWS_ENDPOINT_URL_SNS
  --region R                default AWS_REGION, else us-east-1
  --attributes JSON         attributes over the base's, e.g. '{"DisplayName":"orders"}'
  --secret NEW              write the topic's ARN into this secret
  --secret-key KEY          the secret's key for it (default TOPIC_ARN)
`,
  'sns delete': `Usage: devstack-hooks sns delete --topic NAME --key KEY [options]

Deletes the per-feature topic NAME-KEY when this tool made it (its tag says so; else exit 1).
Not there: nothing to do.

  --topic NAME              the base topic's name (required)
  --key KEY                 the copy's routing key (required)
  --endpoint URL            an SNS-compatible endpoint (LocalStack)
  --region R                default AWS_REGION, else us-east-1
`,
  'postgres create': `Usage: devstack-hooks postgres create --database NAME --key KEY [options]

Creates the copy's database NAME_KEY ('-' in KEY as '_': orders + feature-1 ->
orders_feature_1) with CREATE DATABASE ... TEMPLATE, owned by the template's owner (the app's
role) or --owner, and marks it as devstack's (COMMENT ON DATABASE 'devstack:{...}'). Already
made by this tool: nothing changes; a database of that name it did not make: exit 1. A
template in use by other sessions (PostgreSQL copies one only while no one else is connected
to it) is retried with backoff, then exit 1, DEVSTACK_HOOK_PG_TEMPLATE_BUSY. With --secret,
the database URL in the copy's secret (cloned from the base's) is pointed at the copy.

  --database NAME           the base's database (required): letters, digits, '_'
  --key KEY                 the copy's routing key (required)
  --template T              the database copied (default: NAME itself)
  --owner ROLE              the copy's owner (default: the template's owner)
  --secret NEW              the copy's secret holding the database URL (must exist)
  --secret-key KEY          the URL's key in it (default DATABASE_URL): a postgres:// URL or
                            a key=value string; its database becomes the copy's

The admin connection comes from the libpq variables as node-postgres reads them: PGHOST (a
host or a socket directory), PGPORT, PGUSER, PGPASSWORD, PGSSLMODE, and PGDATABASE (default
postgres; never the template). --request-timeout limits each statement, the copy included.
`,
  'postgres drop': `Usage: devstack-hooks postgres drop --database NAME --key KEY [options]

Drops the copy's database NAME_KEY when this tool made it for NAME and KEY (its marker says
so; anything else: exit 1, left alone): new connections are refused, open ones ended
(pg_terminate_backend), then DROP DATABASE. Not there: nothing to do.

  --database NAME           the base's database (required)
  --key KEY                 the copy's routing key (required)

The admin connection comes from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE, PGDATABASE.
`,
};

export const HELP = `Usage: devstack-hooks COMMAND [flags]

Helm hook jobs for devstack feature copies: safe when many copies deploy at once, idempotent
(a rerun changes nothing), and refusing a routing key that is not a DNS-1123 label before any
request.

Commands
  ingressroute add          add a copy's header rule to a shared Traefik IngressRoute
  ingressroute remove       remove the rules it added for a key
  secret clone              copy a base secret into the copy's secret
  secret update             set keys of a secret in place
  sqs create                create the copy's queue, and put its URL into a secret
  sqs delete                delete the copy's queue
  sns subscribe             the copy's queue, subscribed to a topic for its key's messages
  sns unsubscribe           remove that subscription and the queue
  sns create                create a per-feature topic, and put its ARN into a secret
  sns delete                delete the per-feature topic it made
  postgres create           the copy's database from a template, its URL into the secret
  postgres drop             drop the copy's database it made

devstack-hooks COMMAND --help shows a command's flags.
  -h, --help                this text
  -v, --version             the version

${GLOBAL}`;

export function commandHelp(command: string): string {
  return `${COMMAND_HELP[command]}\n${GLOBAL}`;
}

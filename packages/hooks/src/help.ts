/** `devstack-hooks --help`, and each command's. */
const GLOBAL = `Kubernetes (every command that reads or writes an object)
  --namespace NS            default: the pod's own, else the kubeconfig context's, else default
  --kubeconfig PATH         default: KUBECONFIG, else the pod's service account
  --request-timeout DURATION
                            each API request's limit, Kubernetes and SQS: 30s, 500ms, 2m
                            (default 30s, at most 10m); no answer in time is exit 1,
                            DEVSTACK_HOOK_KUBE_TIMEOUT, not retried
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

devstack-hooks COMMAND --help shows a command's flags.
  -h, --help                this text
  -v, --version             the version

${GLOBAL}`;

export function commandHelp(command: string): string {
  return `${COMMAND_HELP[command]}\n${GLOBAL}`;
}

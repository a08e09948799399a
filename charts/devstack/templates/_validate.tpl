{{/*
Every value the templates read is checked here, by the templates themselves: a team's chart that
includes this library has no schema for it, and `helm template --skip-schema-validation` skips
devstack-service's. What lands in a Traefik rule (the routing key, hosts, the key header's name),
in a hook's command line or in a YAML scalar must be what the schema allows, or a value could
rewrite the rule (a catch-all route), add fields to a container (`securityContext`) or route a
whole top-level domain. Each check fails the render naming the value and what it must be.
*/}}

{{/*
A value's format: (list PATH VALUE FORMAT); FORMAT is a name below. The value must be a string of
at most the format's length that matches its pattern; the devstack-service schema has the same.
*/}}
{{- define "devstack.check" -}}
{{- $label := `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?` -}}
{{- $segment := `[a-z0-9]([a-z0-9-]*[a-z0-9])?` -}}
{{- $formats := dict
  "service" (list `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$` 63 "a DNS-1123 label that starts with a letter (lower-case letters, digits and '-', at most 63 characters)")
  "key" (list (printf "^%s$" $label) 63 "a routing key: a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters) other than base")
  "host" (list (printf `^%s(\.%s)+$` $label $label) 253 "a host name of at least two DNS labels (lower-case letters, digits and '-', dot-separated, at most 253 characters), e.g. example.com")
  "name" (list (printf `^%s(\.%s)*$` $segment $segment) 253 "a Kubernetes object name (a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters)")
  "keyName" (list `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$` 64 "an HTTP header name of lower-case letters, digits and '-' (at most 64 characters)")
  "ttl" (list `^([0-9]+[smhdw]|forever)$` 32 "a kube-janitor TTL: <number><s|m|h|d|w> (e.g. 6h) or forever")
  "repository" (list `^[A-Za-z0-9]([A-Za-z0-9._/:-]*[A-Za-z0-9])?$` 255 "an image repository ([registry[:port]/]path)")
  "tag" (list `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[a-f0-9]{64})?$` 200 "an image tag (letters, digits, '_', '.' and '-', at most 128 characters; @sha256:<digest> may follow)")
  "dataKey" (list `^[-._a-zA-Z0-9]+$` 253 "a Secret key (letters, digits, '-', '_' and '.')")
  "queue" (list `^[A-Za-z0-9_-]{1,80}(\.fifo)?$` 80 "an SQS queue name (letters, digits, '-' and '_', .fifo last)")
  "attribute" (list `^[A-Za-z]+$` 64 "an SQS attribute name")
  "endpoint" (list `^https?://[^\s]+$` 2048 "an http:// or https:// URL")
  "origin" (list (printf `^https?://%s(\.%s)*(:[0-9]{1,5})?/?$` $label $label) 260 "an http:// or https:// origin: a host name and a port, no path, query or credentials (e.g. http://devstack-relay.devstack:7400)")
  "region" (list `^[a-z]{2}(-[a-z]+)+-[0-9]+$` 32 "an AWS region (e.g. eu-west-1)")
  "topic" (list `^[A-Za-z0-9_-]{1,256}(\.fifo)?$` 256 "an SNS topic name (letters, digits, '-' and '_', .fifo last, at most 256 characters)")
  "topicRef" (list `^(arn:aws[a-z-]{0,16}:sns:[a-z0-9-]{1,32}:[0-9]{12}:)?[A-Za-z0-9_-]{1,256}(\.fifo)?$` 330 "an SNS topic name (letters, digits, '-' and '_', .fifo last) or ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
  "messageAttribute" (list `^[A-Za-z0-9_-]([A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-])?$` 256 "an SNS message attribute name (letters, digits, '_', '-' and '.', at most 256 characters, no '..', not starting with AWS. or Amazon.)")
  "pgName" (list `^[A-Za-z_][A-Za-z0-9_]{0,62}$` 63 "a PostgreSQL name (letters, digits and '_', not starting with a digit, at most 63 characters)")
  "portName" (list `^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$` 15 "a port number from 1 to 65535 or a port name (an IANA service name)")
  "mountPath" (list `^(/[A-Za-z0-9_][A-Za-z0-9._-]*)+$` 200 "an absolute path of letters, digits, '.', '_' and '-' (no space, no '.' or '..' part, at most 200 characters)")
-}}
{{- $path := index . 0 -}}
{{- $v := index . 1 -}}
{{- $f := index $formats (index . 2) -}}
{{- if not (and (kindIs "string" $v) (le (len $v) (index $f 1)) (regexMatch (index $f 0) $v)) -}}
{{- fail (printf "%s: %s is not %s" $path (include "devstack.show" $v) (index $f 2)) -}}
{{- end -}}
{{- end -}}

{{/* A value as an error shows it: a string quoted (so a stray space or newline is seen), else as JSON. */}}
{{- define "devstack.show" -}}
{{- if kindIs "string" . }}{{ printf "%q" (trunc 300 .) }}{{ else }}{{ toJson . | trunc 300 }}{{ end -}}
{{- end -}}

{{/* (list PATH VALUE ALLOWED): one of the allowed strings. */}}
{{- define "devstack.check.enum" -}}
{{- $v := index . 1 -}}
{{- $allowed := index . 2 -}}
{{- if not (and (kindIs "string" $v) (has $v $allowed)) -}}
{{- fail (printf "%s: %s is not one of %s" (index . 0) (include "devstack.show" $v) (join ", " $allowed)) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE): true or false, not a string that reads like one. */}}
{{- define "devstack.check.bool" -}}
{{- if not (kindIs "bool" (index . 1)) -}}
{{- fail (printf "%s: %s is not true or false" (index . 0) (include "devstack.show" (index . 1))) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE MIN MAX): a whole number from MIN to MAX (MAX -1: no maximum). */}}
{{- define "devstack.check.int" -}}
{{- $v := index . 1 -}}
{{- $min := index . 2 -}}
{{- $max := index . 3 -}}
{{- $whole := and (or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "float64" $v)) (regexMatch `^-?[0-9]+$` (toString $v)) -}}
{{- if not (and $whole (ge (int64 $v) (int64 $min)) (or (lt (int64 $max) 0) (le (int64 $v) (int64 $max)))) -}}
{{- fail (printf "%s: %s is not a whole number from %d%s" (index . 0) (include "devstack.show" $v) $min (ternary " up" (printf " to %d" $max) (lt (int64 $max) 0))) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE): a map (or nothing). */}}
{{- define "devstack.check.map" -}}
{{- if not (or (kindIs "map" (index . 1)) (kindIs "invalid" (index . 1))) -}}
{{- fail (printf "%s: %s is not a map" (index . 0) (include "devstack.show" (index . 1))) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE): a list (or nothing). */}}
{{- define "devstack.check.list" -}}
{{- if not (or (kindIs "slice" (index . 1)) (kindIs "invalid" (index . 1))) -}}
{{- fail (printf "%s: %s is not a list" (index . 0) (include "devstack.show" (index . 1))) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE): a container's extra env, a list of entries with a name. */}}
{{- define "devstack.check.env" -}}
{{- $path := index . 0 -}}
{{- include "devstack.check.list" . -}}
{{- range $i, $e := index . 1 -}}
{{- if not (and (kindIs "map" $e) (kindIs "string" $e.name) $e.name) -}}
{{- fail (printf "%s[%d]: an env entry is a map with a name, not %s" $path $i (include "devstack.show" $e)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE): a container's resources: requests, limits, claims. */}}
{{- define "devstack.check.resources" -}}
{{- include "devstack.check.map" . -}}
{{- range $k, $_ := index . 1 -}}
{{- if not (has $k (list "requests" "limits" "claims")) -}}
{{- fail (printf "%s: %q is not one of requests, limits, claims" (index $ 0) $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* (list PATH REPOSITORY TAG PULL-POLICY): an image and its pull policy. */}}
{{- define "devstack.check.image" -}}
{{- $path := index . 0 -}}
{{- include "devstack.check" (list (printf "%s.repository" $path) (index . 1) "repository") -}}
{{- include "devstack.check" (list (printf "%s.tag" $path) (index . 2 | toString) "tag") -}}
{{- include "devstack.check.enum" (list (printf "%s.pullPolicy" $path) (index . 3) (list "Always" "IfNotPresent" "Never")) -}}
{{- end -}}

{{/*
The devstack values' shape, before anything is read from them: `dig` cannot look into a string
where a map belongs.
*/}}
{{- define "devstack.validate.shape" -}}
{{- $d := .Values.devstack -}}
{{- include "devstack.check.map" (list "devstack" $d) -}}
{{- $d = $d | default dict -}}
{{- range list "sidecar" "sdk" "edge" "hooks" "relay" -}}
{{- include "devstack.check.map" (list (printf "devstack.%s" .) (index $d .)) -}}
{{- end -}}
{{- range list (list "sidecar" "image") (list "sidecar" "ports") (list "sdk" "image") (list "hooks" "image") (list "hooks" "serviceAccount") (list "hooks" "sharedIngressRoute") -}}
{{- include "devstack.check.map" (list (printf "devstack.%s.%s" (index . 0) (index . 1)) (dig (index . 0) (index . 1) nil $d)) -}}
{{- end -}}
{{- end -}}

{{/*
The effective settings (`config`, from `devstack.config`) and what the schema cannot see: lengths
of derived names and the cluster's version. Call with (dict "config" CONFIG "root" $).
*/}}
{{- define "devstack.validate" -}}
{{- $c := .config -}}
{{- $s := $c.sidecar -}}
{{- $e := $c.edge -}}
{{- $h := $c.hooks -}}
{{- $r := $h.sharedIngressRoute -}}
{{- include "devstack.check" (list "service" $c.service "service") -}}
{{- if $c.feature -}}
{{- include "devstack.check" (list "devstack.feature" $c.feature "key") -}}
{{- if eq $c.feature "base" }}{{ fail "devstack.feature: \"base\" is not a routing key: it names the base lane" }}{{ end -}}
{{- end -}}
{{- if gt (len $c.name) 63 -}}
{{- fail (printf "service and feature together name the copy %q: longer than 63 characters, which Kubernetes refuses as a Service name" $c.name) -}}
{{- end -}}
{{- if $c.ttl }}{{ include "devstack.check" (list "devstack.ttl" $c.ttl "ttl") }}{{ end -}}
{{- include "devstack.check" (list "devstack.keyName" $c.keyName "keyName") -}}
{{- include "devstack.check.int" (list "port" $c.appPort 1 65535) -}}
{{- include "devstack.check.enum" (list "workload" $c.workload (list "service" "worker")) -}}
{{- include "devstack.validate.registry" $c -}}
{{- if not (has $c.appProtocol (list "http" "h2c" "grpc")) -}}
{{- fail (printf "appProtocol: %q is not one of http, h2c, grpc" $c.appProtocol) -}}
{{- end -}}
{{- range list "enabled" "native" "strict" "passthrough" -}}
{{- include "devstack.check.bool" (list (printf "devstack.sidecar.%s" .) (index $s .)) -}}
{{- end -}}
{{- include "devstack.check.image" (list "devstack.sidecar.image" $s.repository $s.tag $s.pullPolicy) -}}
{{- range list "outbound" "inbound" "admin" -}}
{{- include "devstack.check.int" (list (printf "devstack.sidecar.ports.%s" .) (index $s .) 1 65535) -}}
{{- end -}}
{{- include "devstack.check.enum" (list "devstack.sidecar.targets" $s.targets (list "service" "endpoints")) -}}
{{- if and (eq $c.registry "relay") (ne $s.targets "service") -}}
{{- fail "devstack.sidecar.targets: with devstack.registry: relay the relay picks the targets (devstack-relay --targets); set it there, or use devstack.registry: kubernetes" -}}
{{- end -}}
{{- include "devstack.check.resources" (list "devstack.sidecar.resources" $s.resources) -}}
{{- if not (kindIs "string" $s.otelEndpoint) -}}
{{- fail (printf "devstack.sidecar.otelEndpoint: %s is not a string" (include "devstack.show" $s.otelEndpoint)) -}}
{{- end -}}
{{- include "devstack.check.env" (list "devstack.sidecar.env" $s.env) -}}
{{- include "devstack.validate.sdk" $c -}}
{{- include "devstack.check.bool" (list "devstack.edge.enabled" $e.enabled) -}}
{{- include "devstack.check" (list "devstack.edge.host" $e.host "host") -}}
{{- include "devstack.check.enum" (list "devstack.edge.traefik" $e.traefik (list "v2" "v3")) -}}
{{- include "devstack.check.enum" (list "devstack.edge.apiGroup" $e.apiGroup (list "traefik.io" "traefik.containo.us")) -}}
{{- if not (and (kindIs "slice" $e.entryPoints) $e.entryPoints) -}}
{{- fail (printf "devstack.edge.entryPoints: %s is not a list of entry point names" (include "devstack.show" $e.entryPoints)) -}}
{{- end -}}
{{- range $i, $p := $e.entryPoints -}}
{{- if not (and (kindIs "string" $p) $p) -}}
{{- fail (printf "devstack.edge.entryPoints[%d]: %s is not an entry point name" $i (include "devstack.show" $p)) -}}
{{- end -}}
{{- end -}}
{{- include "devstack.check.map" (list "devstack.edge.tls" $e.tls) -}}
{{- include "devstack.validate.previewAuth" $e.previewAuth -}}
{{- include "devstack.check.image" (list "devstack.hooks.image" $h.repository $h.tag $h.pullPolicy) -}}
{{- include "devstack.check.int" (list "devstack.hooks.backoffLimit" $h.backoffLimit 0 10) -}}
{{- include "devstack.check.int" (list "devstack.hooks.activeDeadlineSeconds" $h.activeDeadlineSeconds 10 -1) -}}
{{- include "devstack.check.resources" (list "devstack.hooks.resources" $h.resources) -}}
{{- include "devstack.check.env" (list "devstack.hooks.env" $h.env) -}}
{{- include "devstack.check.map" (list "devstack.hooks.serviceAccount.annotations" $h.serviceAccountAnnotations) -}}
{{- range $k, $v := $h.serviceAccountAnnotations -}}
{{- if or (hasPrefix "helm.sh/" $k) (eq $k "janitor/ttl") -}}
{{- fail (printf "devstack.hooks.serviceAccount.annotations: %q is set by the chart (the hook's lifecycle and TTL)" $k) -}}
{{- end -}}
{{- if not (kindIs "string" $v) -}}
{{- fail (printf "devstack.hooks.serviceAccount.annotations.%s: %s is not a string" $k (include "devstack.show" $v)) -}}
{{- end -}}
{{- end -}}
{{- include "devstack.validate.secrets" $h.secrets -}}
{{- include "devstack.validate.queues" $h.queues -}}
{{- include "devstack.validate.subscriptions" $h.subscriptions -}}
{{- include "devstack.validate.topics" $h.topics -}}
{{- include "devstack.validate.databases" $h.databases -}}
{{- include "devstack.check.bool" (list "devstack.hooks.sharedIngressRoute.enabled" $r.enabled) -}}
{{- include "devstack.check.bool" (list "devstack.hooks.sharedIngressRoute.create" $r.create) -}}
{{- if and $r.enabled (not $r.name) }}{{ fail "devstack.hooks.sharedIngressRoute.name: the shared IngressRoute's name is required when enabled" }}{{ end -}}
{{- if $r.name }}{{ include "devstack.check" (list "devstack.hooks.sharedIngressRoute.name" $r.name "name") }}{{ end -}}
{{- if $r.host }}{{ include "devstack.check" (list "devstack.hooks.sharedIngressRoute.host" $r.host "host") }}{{ end -}}
{{- if $r.service }}{{ include "devstack.check" (list "devstack.hooks.sharedIngressRoute.service" $r.service "service") }}{{ end -}}
{{- if kindIs "string" $r.port -}}
{{- include "devstack.check" (list "devstack.hooks.sharedIngressRoute.port" $r.port "portName") -}}
{{- else -}}
{{- include "devstack.check.int" (list "devstack.hooks.sharedIngressRoute.port" $r.port 1 65535) -}}
{{- end -}}
{{- include "devstack.check.int" (list "devstack.hooks.sharedIngressRoute.priority" $r.priority 0 -1) -}}
{{- if and $c.ttl (not $c.feature) -}}
{{- fail "devstack.ttl: only a feature copy has a TTL (kube-janitor would delete the base)" -}}
{{- end -}}
{{- if and $s.enabled $s.native (semverCompare "<1.29-0" .root.Capabilities.KubeVersion.Version) -}}
{{- fail (printf "devstack.sidecar.native: native sidecars (init containers with restartPolicy: Always) need Kubernetes 1.29 or newer; this cluster is %s" .root.Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- if and (or $e.enabled $r.enabled) (eq $e.traefik "v3") (eq $e.apiGroup "traefik.containo.us") -}}
{{- fail "devstack.edge: Traefik v3 serves its CRDs under traefik.io only" -}}
{{- end -}}
{{- end -}}

{{/* Preview authentication: one of Traefik's basicAuth (with a secret) or forwardAuth (with an address). */}}
{{- define "devstack.validate.previewAuth" -}}
{{- include "devstack.check.map" (list "devstack.edge.previewAuth" .) -}}
{{- if gt (len (. | default dict)) 1 -}}
{{- fail (printf "devstack.edge.previewAuth: %s names more than one method; one of basicAuth, forwardAuth" (keys . | sortAlpha | join ", ")) -}}
{{- end -}}
{{- range $method, $spec := . -}}
{{- if not (has $method (list "basicAuth" "forwardAuth")) -}}
{{- fail (printf "devstack.edge.previewAuth: %q is not one of basicAuth, forwardAuth" $method) -}}
{{- end -}}
{{- include "devstack.check.map" (list (printf "devstack.edge.previewAuth.%s" $method) $spec) -}}
{{- if eq $method "basicAuth" -}}
{{- if not (and (kindIs "map" $spec) (kindIs "string" $spec.secret) $spec.secret) -}}
{{- fail "devstack.edge.previewAuth.basicAuth.secret: the Secret of the users is required" -}}
{{- end -}}
{{- else if not (and (kindIs "map" $spec) (kindIs "string" $spec.address) (regexMatch `^https?://` $spec.address)) -}}
{{- fail (printf "devstack.edge.previewAuth.forwardAuth.address: %s is not an http:// or https:// URL" (include "devstack.show" (and (kindIs "map" $spec) $spec.address))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Base secrets cloned into a copy's. Their names and keys go into a hook's command line: a name that
starts with '-' would read as an option. `set` values are never shown (they may be secrets).
*/}}
{{- define "devstack.validate.secrets" -}}
{{- include "devstack.check.list" (list "devstack.hooks.secrets" .) -}}
{{- range $i, $s := . -}}
{{- $path := printf "devstack.hooks.secrets[%d]" $i -}}
{{- include "devstack.check.map" (list $path $s) -}}
{{- include "devstack.check" (list (printf "%s.from" $path) $s.from "name") -}}
{{- if $s.to }}{{ include "devstack.check" (list (printf "%s.to" $path) $s.to "name") }}{{ end -}}
{{- include "devstack.check.map" (list (printf "%s.set" $path) $s.set) -}}
{{- range $k, $v := $s.set -}}
{{- include "devstack.check" (list (printf "%s.set" $path) $k "dataKey") -}}
{{- if not (kindIs "string" $v) -}}
{{- fail (printf "%s.set.%s: the value is a %s, not a string" $path $k (kindOf $v)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* SQS queues created for a copy; every field goes into a hook's command line. */}}
{{- define "devstack.validate.queues" -}}
{{- include "devstack.check.list" (list "devstack.hooks.queues" .) -}}
{{- range $i, $q := . -}}
{{- $path := printf "devstack.hooks.queues[%d]" $i -}}
{{- include "devstack.check.map" (list $path $q) -}}
{{- include "devstack.check" (list (printf "%s.name" $path) $q.name "queue") -}}
{{- include "devstack.validate.aws" (list $path $q "the queue URL") -}}
{{- end -}}
{{- end -}}

{{/*
What the SQS and SNS hooks share, called with (list PATH ENTRY WHAT): attributes, the copy's
secret that gets WHAT, endpoint and region.
*/}}
{{- define "devstack.validate.aws" -}}
{{- $path := index . 0 -}}
{{- $q := index . 1 -}}
{{- include "devstack.check.map" (list (printf "%s.attributes" $path) $q.attributes) -}}
{{- range $k, $v := $q.attributes -}}
{{- include "devstack.check" (list (printf "%s.attributes" $path) $k "attribute") -}}
{{- if not (or (kindIs "string" $v) (kindIs "bool" $v) (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v)) -}}
{{- fail (printf "%s.attributes.%s: %s is not a string, number or boolean" $path $k (include "devstack.show" $v)) -}}
{{- end -}}
{{- end -}}
{{- include "devstack.validate.secretTarget" (list $path $q (index . 2)) -}}
{{- if $q.endpoint }}{{ include "devstack.check" (list (printf "%s.endpoint" $path) $q.endpoint "endpoint") }}{{ end -}}
{{- if $q.region }}{{ include "devstack.check" (list (printf "%s.region" $path) $q.region "region") }}{{ end -}}
{{- end -}}

{{/* (list PATH ENTRY WHAT): an entry's `secret` (the copy's, that gets WHAT) and `secretKey`, only with it. */}}
{{- define "devstack.validate.secretTarget" -}}
{{- $path := index . 0 -}}
{{- $q := index . 1 -}}
{{- if $q.secret }}{{ include "devstack.check" (list (printf "%s.secret" $path) $q.secret "name") }}{{ end -}}
{{- if $q.secretKey -}}
{{- include "devstack.check" (list (printf "%s.secretKey" $path) $q.secretKey "dataKey") -}}
{{- if not $q.secret }}{{ fail (printf "%s.secretKey: only with secret (the secret that gets %s)" $path (index . 2)) }}{{ end -}}
{{- end -}}
{{- end -}}

{{/* A copy's queue subscribed to a base SNS topic, for the copy's key only. */}}
{{- define "devstack.validate.subscriptions" -}}
{{- include "devstack.check.list" (list "devstack.hooks.subscriptions" .) -}}
{{- range $i, $s := . -}}
{{- $path := printf "devstack.hooks.subscriptions[%d]" $i -}}
{{- include "devstack.check.map" (list $path $s) -}}
{{- include "devstack.check" (list (printf "%s.topic" $path) $s.topic "topicRef") -}}
{{- include "devstack.check" (list (printf "%s.queue" $path) $s.queue "queue") -}}
{{- if not (kindIs "invalid" $s.keyName) -}}
{{- include "devstack.check" (list (printf "%s.keyName" $path) $s.keyName "messageAttribute") -}}
{{- if or (contains ".." $s.keyName) (regexMatch `^(?i)(aws|amazon)\.` $s.keyName) -}}
{{- fail (printf "%s.keyName: %s is not an SNS message attribute name (no '..', not starting with AWS. or Amazon.)" $path (include "devstack.show" $s.keyName)) -}}
{{- end -}}
{{- end -}}
{{- include "devstack.validate.aws" (list $path $s "the copy's queue URL") -}}
{{- end -}}
{{- end -}}

{{/* Per-feature SNS topics, <topic>-<feature>. */}}
{{- define "devstack.validate.topics" -}}
{{- include "devstack.check.list" (list "devstack.hooks.topics" .) -}}
{{- range $i, $s := . -}}
{{- $path := printf "devstack.hooks.topics[%d]" $i -}}
{{- include "devstack.check.map" (list $path $s) -}}
{{- include "devstack.check" (list (printf "%s.topic" $path) $s.topic "topic") -}}
{{- include "devstack.validate.aws" (list $path $s "the topic ARN") -}}
{{- end -}}
{{- end -}}

{{/*
A copy's PostgreSQL database made from a template. The names go into SQL (quoted as well by the
command); adminSecret is the Secret the Job's admin connection comes from (PGHOST, PGUSER, ...).
*/}}
{{- define "devstack.validate.databases" -}}
{{- include "devstack.check.list" (list "devstack.hooks.databases" .) -}}
{{- range $i, $s := . -}}
{{- $path := printf "devstack.hooks.databases[%d]" $i -}}
{{- include "devstack.check.map" (list $path $s) -}}
{{- include "devstack.check" (list (printf "%s.database" $path) $s.database "pgName") -}}
{{- if not (kindIs "invalid" $s.template) }}{{ include "devstack.check" (list (printf "%s.template" $path) $s.template "pgName") }}{{ end -}}
{{- if not (kindIs "invalid" $s.owner) }}{{ include "devstack.check" (list (printf "%s.owner" $path) $s.owner "pgName") }}{{ end -}}
{{- if kindIs "invalid" $s.adminSecret -}}
{{- fail (printf "%s.adminSecret: the Secret of the admin connection (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE) is required" $path) -}}
{{- end -}}
{{- include "devstack.check" (list (printf "%s.adminSecret" $path) $s.adminSecret "name") -}}
{{- include "devstack.validate.secretTarget" (list $path $s "the copy's database URL") -}}
{{- end -}}
{{- end -}}

{{/*
The injected SDK. Its mount path goes into the app's NODE_OPTIONS (split at spaces) and is an
emptyDir over whatever the app's image has there: a system directory itself would hide the files
the app needs to start.
*/}}
{{- define "devstack.validate.sdk" -}}
{{- $k := .sdk -}}
{{- include "devstack.check.bool" (list "devstack.sdk.inject" $k.inject) -}}
{{- include "devstack.check.image" (list "devstack.sdk.image" $k.repository $k.tag $k.pullPolicy) -}}
{{- include "devstack.check" (list "devstack.sdk.mountPath" $k.mountPath "mountPath") -}}
{{- if has $k.mountPath (list "/app" "/bin" "/boot" "/dev" "/etc" "/home" "/lib" "/lib32" "/lib64" "/opt" "/proc" "/root" "/run" "/sbin" "/srv" "/sys" "/tmp" "/usr" "/var") -}}
{{- fail (printf "devstack.sdk.mountPath: %q is a directory of the app's image that the SDK's volume would hide; e.g. /devstack/sdk" $k.mountPath) -}}
{{- end -}}
{{- include "devstack.check.resources" (list "devstack.sdk.resources" $k.resources) -}}
{{- include "devstack.check.bool" (list "devstack.sdk.proxyless" $k.proxyless) -}}
{{- if and $k.proxyless (not $k.inject) -}}
{{- fail "devstack.sdk.proxyless: the injected SDK's routing; it needs devstack.sdk.inject" -}}
{{- end -}}
{{- if and $k.proxyless (ne .registry "relay") -}}
{{- fail "devstack.sdk.proxyless: the injected SDK follows the relay (devstack.registry: relay); with kubernetes the app would need API credentials, which it never gets" -}}
{{- end -}}
{{- if and $k.inject (not .sidecar.enabled) -}}
{{- fail "devstack.sdk.inject: the injected SDK carries the key and the sidecar routes; it needs devstack.sidecar.enabled" -}}
{{- end -}}
{{- end -}}

{{/*
Where the registry comes from. relay: the sidecar (and a worker's or a proxyless app's SDK) follows
devstack-relay's stream and needs no API credentials; the URL is an origin the relay source takes
(its port one fetch does not refuse). kubernetes: the sidecar watches the API server itself.
*/}}
{{- define "devstack.validate.registry" -}}
{{- include "devstack.check.enum" (list "devstack.registry" .registry (list "relay" "kubernetes")) -}}
{{- include "devstack.check" (list "devstack.relay.url" .relayUrl "origin") -}}
{{- $port := regexFind `:[0-9]+/?$` .relayUrl | trimPrefix ":" | trimSuffix "/" -}}
{{- if and $port (or (lt (int $port) 1) (gt (int $port) 65535)) -}}
{{- fail (printf "devstack.relay.url: %q: the port must be from 1 to 65535" .relayUrl) -}}
{{- end -}}
{{- end -}}

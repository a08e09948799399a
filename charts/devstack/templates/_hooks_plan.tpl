{{/*
What the hook Jobs of a feature copy run, as YAML: `jobs` (suffix, Helm events, weight, the
devstack-hooks arguments, whether the command talks to the Kubernetes API), `rules` (the Role's
rules: exactly what those commands need, per the hooks README) and `deleteEvents` (whether any Job
runs at pre-delete). Base plans nothing: every command works on a copy's key, and `base` is never
one, so values shared by base and copies switch hooks on for the copies only.

Weights order a copy's creation so that what routes traffic comes last: secrets (0), then queues,
SNS subscriptions and topics, and databases (1: they write a URL or ARN into a cloned secret, and
`postgres create --secret` rewrites the clone's database URL), then the shared route (2). At
pre-delete the route goes first (0), then the queues, subscriptions, topics and databases (1).
*/}}
{{- define "devstack.hooks.plan" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- $h := $c.hooks -}}
{{- $jobs := list -}}
{{- $rules := list -}}
{{- $deleteEvents := false -}}
{{- if $c.feature -}}
{{- $create := "pre-install,pre-upgrade" -}}
{{- $ns := list "--namespace" $c.namespace -}}
{{- $froms := list -}}
{{- range $h.secrets }}{{ $froms = append $froms .from }}{{ end -}}
{{- $bases := list -}}
{{- $copies := list -}}
{{- range $i, $s := $h.secrets -}}
{{- $to := $s.to | default (printf "%s-%s" $s.from $c.feature) -}}
{{- if has $to $froms -}}
{{- fail (printf "devstack.hooks.secrets[%d].to: %q is a base secret (another entry's from); a copy's secret must be its own" $i $to) -}}
{{- end -}}
{{- if has $to $copies -}}
{{- fail (printf "devstack.hooks.secrets[%d].to: %q is already the copy of another entry" $i $to) -}}
{{- end -}}
{{- if gt (len $to) 253 -}}
{{- fail (printf "devstack.hooks.secrets[%d].to: %q is longer than 253 characters" $i $to) -}}
{{- end -}}
{{- $bases = append $bases $s.from -}}
{{- $copies = append $copies $to -}}
{{- $args := list "secret" "clone" "--from" $s.from "--to" $to "--key" $c.feature "--service" $c.service "--ttl" ($c.ttl | default "forever") -}}
{{- range $k, $v := ($s.set | default dict) }}{{ $args = concat $args (list "--set" (printf "%s=%s" $k $v)) }}{{ end -}}
{{- $jobs = append $jobs (dict "suffix" (printf "secret-%d" $i) "events" $create "weight" 0 "kube" true "args" (concat $args $ns)) -}}
{{- end -}}
{{- $queues := list -}}
{{- range $i, $q := $h.queues -}}
{{- if has $q.name $queues -}}
{{- fail (printf "devstack.hooks.queues[%d].name: %q is listed twice" $i $q.name) -}}
{{- end -}}
{{- $queues = append $queues $q.name -}}
{{- if gt (len (printf "%s-%s" $q.name $c.feature)) 80 -}}
{{- fail (printf "devstack.hooks.queues[%d].name: the copy's queue %q-%s (with .fifo) is longer than SQS's 80 characters" $i (trimSuffix ".fifo" $q.name) $c.feature) -}}
{{- end -}}
{{- $where := list -}}
{{- with $q.endpoint }}{{ $where = concat $where (list "--endpoint" .) }}{{ end -}}
{{- with $q.region }}{{ $where = concat $where (list "--region" .) }}{{ end -}}
{{- $args := concat (list "sqs" "create" "--queue" $q.name "--key" $c.feature) $where -}}
{{- with $q.attributes }}{{ $args = concat $args (list "--attributes" (toJson .)) }}{{ end -}}
{{- if $q.secret -}}
{{- if has $q.secret $froms -}}
{{- fail (printf "devstack.hooks.queues[%d].secret: %q is a base secret (a secrets entry's from); the copy's queue URL goes into the copy's secret" $i $q.secret) -}}
{{- end -}}
{{- $args = concat $args (list "--secret" $q.secret "--secret-key" ($q.secretKey | default "QUEUE_URL")) $ns -}}
{{- if not (has $q.secret $copies) }}{{ $copies = append $copies $q.secret }}{{ end -}}
{{- end -}}
{{- $jobs = append $jobs (dict "suffix" (printf "sqs-%d" $i) "events" $create "weight" 1 "kube" (not (empty $q.secret)) "args" $args) -}}
{{- $jobs = append $jobs (dict "suffix" (printf "sqs-%d-delete" $i) "events" "pre-delete" "weight" 1 "kube" false "args" (concat (list "sqs" "delete" "--queue" $q.name "--key" $c.feature) $where)) -}}
{{- $deleteEvents = true -}}
{{- end -}}
{{- $pairs := list -}}
{{- range $i, $s := $h.subscriptions -}}
{{- $path := printf "devstack.hooks.subscriptions[%d]" $i -}}
{{- $pair := printf "%s %s" $s.topic $s.queue -}}
{{- if has $pair $pairs -}}
{{- fail (printf "%s: the queue %q is subscribed to the topic %q twice" $path $s.queue $s.topic) -}}
{{- end -}}
{{- $pairs = append $pairs $pair -}}
{{- if has $s.queue $queues -}}
{{- fail (printf "%s.queue: %q is also in devstack.hooks.queues; sns subscribe creates the copy's queue itself (and unsubscribe deletes it)" $path $s.queue) -}}
{{- end -}}
{{- if gt (len (printf "%s-%s" $s.queue $c.feature)) 80 -}}
{{- fail (printf "%s.queue: the copy's queue %q-%s (with .fifo) is longer than SQS's 80 characters" $path (trimSuffix ".fifo" $s.queue) $c.feature) -}}
{{- end -}}
{{- $where := list -}}
{{- with $s.endpoint }}{{ $where = concat $where (list "--endpoint" .) }}{{ end -}}
{{- with $s.region }}{{ $where = concat $where (list "--region" .) }}{{ end -}}
{{- $which := list "--topic" $s.topic "--queue" $s.queue "--key" $c.feature -}}
{{- $args := concat (list "sns" "subscribe") $which (list "--key-name" ($s.keyName | default $c.keyName)) $where -}}
{{- with $s.attributes }}{{ $args = concat $args (list "--attributes" (toJson .)) }}{{ end -}}
{{- if $s.secret -}}
{{- if has $s.secret $froms -}}
{{- fail (printf "%s.secret: %q is a base secret (a secrets entry's from); the copy's queue URL goes into the copy's secret" $path $s.secret) -}}
{{- end -}}
{{- $args = concat $args (list "--secret" $s.secret "--secret-key" ($s.secretKey | default "QUEUE_URL")) $ns -}}
{{- if not (has $s.secret $copies) }}{{ $copies = append $copies $s.secret }}{{ end -}}
{{- end -}}
{{- $jobs = append $jobs (dict "suffix" (printf "sns-%d" $i) "events" $create "weight" 1 "kube" (not (empty $s.secret)) "args" $args) -}}
{{- $jobs = append $jobs (dict "suffix" (printf "sns-%d-delete" $i) "events" "pre-delete" "weight" 1 "kube" false "args" (concat (list "sns" "unsubscribe") $which $where)) -}}
{{- $deleteEvents = true -}}
{{- end -}}
{{- $topics := list -}}
{{- range $i, $s := $h.topics -}}
{{- $path := printf "devstack.hooks.topics[%d]" $i -}}
{{- if has $s.topic $topics -}}
{{- fail (printf "%s.topic: %q is listed twice" $path $s.topic) -}}
{{- end -}}
{{- $topics = append $topics $s.topic -}}
{{- if gt (len (printf "%s-%s" $s.topic $c.feature)) 256 -}}
{{- fail (printf "%s.topic: the copy's topic %q-%s (with .fifo) is longer than SNS's 256 characters" $path (trimSuffix ".fifo" $s.topic) $c.feature) -}}
{{- end -}}
{{- $where := list -}}
{{- with $s.endpoint }}{{ $where = concat $where (list "--endpoint" .) }}{{ end -}}
{{- with $s.region }}{{ $where = concat $where (list "--region" .) }}{{ end -}}
{{- $which := list "--topic" $s.topic "--key" $c.feature -}}
{{- $args := concat (list "sns" "create") $which $where -}}
{{- with $s.attributes }}{{ $args = concat $args (list "--attributes" (toJson .)) }}{{ end -}}
{{- if $s.secret -}}
{{- if has $s.secret $froms -}}
{{- fail (printf "%s.secret: %q is a base secret (a secrets entry's from); the copy's topic ARN goes into the copy's secret" $path $s.secret) -}}
{{- end -}}
{{- $args = concat $args (list "--secret" $s.secret "--secret-key" ($s.secretKey | default "TOPIC_ARN")) $ns -}}
{{- if not (has $s.secret $copies) }}{{ $copies = append $copies $s.secret }}{{ end -}}
{{- end -}}
{{- $jobs = append $jobs (dict "suffix" (printf "topic-%d" $i) "events" $create "weight" 1 "kube" (not (empty $s.secret)) "args" $args) -}}
{{- $jobs = append $jobs (dict "suffix" (printf "topic-%d-delete" $i) "events" "pre-delete" "weight" 1 "kube" false "args" (concat (list "sns" "delete") $which $where)) -}}
{{- $deleteEvents = true -}}
{{- end -}}
{{- /* A database's secret must exist (secret clone makes it, at weight 0): get and update, no create. */ -}}
{{- $rewritten := list -}}
{{- $databases := list -}}
{{- range $i, $s := $h.databases -}}
{{- $path := printf "devstack.hooks.databases[%d]" $i -}}
{{- $copy := printf "%s_%s" $s.database ($c.feature | replace "-" "_") -}}
{{- if has $copy $databases -}}
{{- fail (printf "%s.database: the copy's database %q is made by another entry too" $path $copy) -}}
{{- end -}}
{{- $databases = append $databases $copy -}}
{{- if gt (len $copy) 63 -}}
{{- fail (printf "%s.database: the copy's database %q is longer than PostgreSQL's 63 characters" $path $copy) -}}
{{- end -}}
{{- if eq ($s.template | default $s.database) $copy -}}
{{- fail (printf "%s.template: %q is the copy itself" $path $copy) -}}
{{- end -}}
{{- $which := list "--database" $s.database "--key" $c.feature -}}
{{- $args := concat (list "postgres" "create") $which -}}
{{- with $s.template }}{{ $args = concat $args (list "--template" .) }}{{ end -}}
{{- with $s.owner }}{{ $args = concat $args (list "--owner" .) }}{{ end -}}
{{- if $s.secret -}}
{{- if has $s.secret $froms -}}
{{- fail (printf "%s.secret: %q is a base secret (a secrets entry's from); the copy's database URL goes into the copy's secret" $path $s.secret) -}}
{{- end -}}
{{- $args = concat $args (list "--secret" $s.secret "--secret-key" ($s.secretKey | default "DATABASE_URL")) $ns -}}
{{- if not (has $s.secret $rewritten) }}{{ $rewritten = append $rewritten $s.secret }}{{ end -}}
{{- end -}}
{{- $jobs = append $jobs (dict "suffix" (printf "db-%d" $i) "events" $create "weight" 1 "kube" (not (empty $s.secret)) "args" $args "adminSecret" $s.adminSecret) -}}
{{- $jobs = append $jobs (dict "suffix" (printf "db-%d-delete" $i) "events" "pre-delete" "weight" 1 "kube" false "args" (concat (list "postgres" "drop") $which) "adminSecret" $s.adminSecret) -}}
{{- $deleteEvents = true -}}
{{- end -}}
{{- $updated := concat $copies $rewritten | uniq -}}
{{- if $updated -}}
{{- $rules = append $rules (dict "apiGroups" (list "") "resources" (list "secrets") "resourceNames" (concat $bases $updated | uniq) "verbs" (list "get")) -}}
{{- $rules = append $rules (dict "apiGroups" (list "") "resources" (list "secrets") "resourceNames" $updated "verbs" (list "update")) -}}
{{- end -}}
{{- if $copies -}}
{{- /* RBAC cannot limit create by name. */ -}}
{{- $rules = append $rules (dict "apiGroups" (list "") "resources" (list "secrets") "verbs" (list "create")) -}}
{{- end -}}
{{- $r := $h.sharedIngressRoute -}}
{{- if $r.enabled -}}
{{- if and $c.edge.enabled (eq $r.name $c.name) -}}
{{- fail (printf "devstack.hooks.sharedIngressRoute.name: %q is this release's own IngressRoute (devstack.edge); name the shared one" $r.name) -}}
{{- end -}}
{{- $args := list "ingressroute" "add" "--name" $r.name "--host" $r.host "--key" $c.feature "--service" $r.service "--port" (toString $r.port) "--traefik" $c.edge.traefik "--api-group" $c.edge.apiGroup "--key-name" $c.keyName -}}
{{- /* As on the edge's own routes: without it Traefik speaks HTTP/1.1 to an h2c or gRPC copy. */ -}}
{{- if $c.appH2c }}{{ $args = concat $args (list "--scheme" "h2c") }}{{ end -}}
{{- if gt (int $r.priority) 0 }}{{ $args = concat $args (list "--priority" (toString (int $r.priority))) }}{{ end -}}
{{- if $r.create }}{{ $args = append $args "--create" }}{{ end -}}
{{- $jobs = append $jobs (dict "suffix" "route" "events" $create "weight" 2 "kube" true "args" (concat $args $ns)) -}}
{{- $jobs = append $jobs (dict "suffix" "route-delete" "events" "pre-delete" "weight" 0 "kube" true "args" (concat (list "ingressroute" "remove" "--name" $r.name "--key" $c.feature "--api-group" $c.edge.apiGroup) $ns)) -}}
{{- $deleteEvents = true -}}
{{- $rules = append $rules (dict "apiGroups" (list $c.edge.apiGroup) "resources" (list "ingressroutes") "resourceNames" (list $r.name) "verbs" (list "get" "update")) -}}
{{- if $r.create -}}
{{- $rules = append $rules (dict "apiGroups" (list $c.edge.apiGroup) "resources" (list "ingressroutes") "verbs" (list "create")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "jobs" $jobs "rules" $rules "deleteEvents" $deleteEvents) -}}
{{- end -}}

{{/* A hook object's name: `<release name>-hooks[-suffix]`, cut to 63 characters with a hash (a Job's name is a pod label value). */}}
{{- define "devstack.hooks.name" -}}
{{- $root := index . 0 -}}
{{- $name := printf "%s-hooks%s" (include "devstack.fullname" $root) (index . 1) -}}
{{- if gt (len $name) 63 -}}
{{- $name = printf "%s-%s" (trunc 52 $name | trimSuffix "-") (sha256sum $name | trunc 10) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/*
What the hook Jobs of a feature copy run, as YAML: `jobs` (suffix, Helm events, weight, the
devstack-hooks arguments, whether the command talks to the Kubernetes API), `rules` (the Role's
rules: exactly what those commands need, per the hooks README) and `deleteEvents` (whether any Job
runs at pre-delete). Base plans nothing: every command works on a copy's key, and `base` is never
one, so values shared by base and copies switch hooks on for the copies only.

Weights order a copy's creation so that what routes traffic comes last: secrets (0), then queues
(1, which write their URL into a cloned secret), then the shared route (2). At pre-delete the route
goes first (0), then the queues (1).
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
{{- if $copies -}}
{{- $rules = append $rules (dict "apiGroups" (list "") "resources" (list "secrets") "resourceNames" (concat $bases $copies | uniq) "verbs" (list "get")) -}}
{{- $rules = append $rules (dict "apiGroups" (list "") "resources" (list "secrets") "resourceNames" $copies "verbs" (list "update")) -}}
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

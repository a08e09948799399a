{{/* The release's objects are named after it (truncated to a DNS label). */}}
{{- define "relay.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "relay.selector" -}}
app.kubernetes.io/name: devstack-relay
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "relay.labels" -}}
{{ include "relay.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{/*
Every value is checked here, by the templates themselves, as values.schema.json checks it:
`helm template --skip-schema-validation` skips the schema, and a value that lands in an argument,
a label or a YAML scalar must be what the schema allows. Each check fails the render naming the
value and what it must be.
*/}}
{{- define "relay.show" -}}
{{- if kindIs "string" . }}{{ printf "%q" (trunc 300 .) }}{{ else }}{{ toJson . | trunc 300 }}{{ end -}}
{{- end -}}

{{/* (list PATH VALUE PATTERN MAXLEN WHAT) */}}
{{- define "relay.check.string" -}}
{{- $v := index . 1 -}}
{{- if not (and (kindIs "string" $v) (le (len $v) (index . 3)) (regexMatch (index . 2) $v)) -}}
{{- fail (printf "%s: %s is not %s" (index . 0) (include "relay.show" $v) (index . 4)) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE ALLOWED) */}}
{{- define "relay.check.enum" -}}
{{- $v := index . 1 -}}
{{- if not (and (kindIs "string" $v) (has $v (index . 2))) -}}
{{- fail (printf "%s: %s is not one of %s" (index . 0) (include "relay.show" $v) (join ", " (index . 2))) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE) */}}
{{- define "relay.check.bool" -}}
{{- if not (kindIs "bool" (index . 1)) -}}
{{- fail (printf "%s: %s is not true or false" (index . 0) (include "relay.show" (index . 1))) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE MIN MAX) */}}
{{- define "relay.check.int" -}}
{{- $v := index . 1 -}}
{{- $whole := and (or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "float64" $v)) (regexMatch `^-?[0-9]+$` (toString $v)) -}}
{{- if not (and $whole (ge (int64 $v) (int64 (index . 2))) (le (int64 $v) (int64 (index . 3)))) -}}
{{- fail (printf "%s: %s is not a whole number from %d to %d" (index . 0) (include "relay.show" $v) (index . 2) (index . 3)) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH VALUE KIND) KIND: map or slice */}}
{{- define "relay.check.kind" -}}
{{- if not (kindIs (index . 2) (index . 1)) -}}
{{- fail (printf "%s: %s is not a %s" (index . 0) (include "relay.show" (index . 1)) (ternary "map" "list" (eq (index . 2) "map"))) -}}
{{- end -}}
{{- end -}}

{{/* (list PATH MAP): label keys and values. */}}
{{- define "relay.check.labels" -}}
{{- include "relay.check.kind" (list (index . 0) (index . 1) "map") -}}
{{- $path := index . 0 -}}
{{- range $k, $v := index . 1 -}}
{{- include "relay.check.string" (list (printf "%s key" $path) $k `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$` 316 "a label key ([prefix/]name)") -}}
{{- include "relay.check.string" (list (printf "%s.%s" $path $k) $v `^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$` 63 "a label value (a string of at most 63 letters, digits, '-', '_' and '.')") -}}
{{- end -}}
{{- end -}}

{{- define "relay.validate" -}}
{{- $v := .Values -}}
{{- $label := `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$` -}}
{{- include "relay.check.string" (list "release name" .Release.Name $label 53 "a DNS-1123 label of at most 53 characters") -}}
{{- range list "image" "ports" "resources" "podDisruptionBudget" "networkPolicy" "nodeSelector" "podLabels" "podAnnotations" -}}
{{- include "relay.check.kind" (list . (index $v .) "map") -}}
{{- end -}}
{{- include "relay.check.string" (list "image.repository" $v.image.repository `^[A-Za-z0-9]([A-Za-z0-9._/:-]*[A-Za-z0-9])?$` 255 "an image repository ([registry[:port]/]path)") -}}
{{- include "relay.check.string" (list "image.tag" (toString $v.image.tag) `^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[a-f0-9]{64})?)?$` 200 "an image tag (letters, digits, '_', '.' and '-', at most 128 characters; @sha256:<digest> may follow)") -}}
{{- include "relay.check.enum" (list "image.pullPolicy" $v.image.pullPolicy (list "Always" "IfNotPresent" "Never")) -}}
{{- include "relay.check.int" (list "replicas" $v.replicas 1 100) -}}
{{- include "relay.check.bool" (list "allNamespaces" $v.allNamespaces) -}}
{{- include "relay.check.int" (list "maxNamespaces" $v.maxNamespaces 1 100000) -}}
{{- include "relay.check.kind" (list "namespaces" $v.namespaces "slice") -}}
{{- range $i, $ns := $v.namespaces -}}
{{- include "relay.check.string" (list (printf "namespaces[%d]" $i) $ns $label 63 "a namespace name (a DNS-1123 label)") -}}
{{- end -}}
{{- if ne (len $v.namespaces) (len (uniq $v.namespaces)) -}}
{{- fail (printf "namespaces: %s names a namespace twice" (include "relay.show" $v.namespaces)) -}}
{{- end -}}
{{- if and $v.allNamespaces $v.namespaces -}}
{{- fail "namespaces and allNamespaces: give a list of namespaces or allNamespaces: true, not both" -}}
{{- end -}}
{{- if not (or $v.allNamespaces $v.namespaces) -}}
{{- fail "namespaces: the relay serves no namespace; list the namespaces its clients are in, or set allNamespaces: true" -}}
{{- end -}}
{{- include "relay.check.enum" (list "targets" $v.targets (list "service" "endpoints")) -}}
{{- include "relay.check.string" (list "clusterDomain" $v.clusterDomain `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$` 253 "a DNS domain (e.g. cluster.local)") -}}
{{- include "relay.check.int" (list "ports.stream" $v.ports.stream 1 65535) -}}
{{- include "relay.check.int" (list "ports.admin" $v.ports.admin 1 65535) -}}
{{- if eq (int64 $v.ports.stream) (int64 $v.ports.admin) -}}
{{- fail (printf "ports: the stream and admin ports are both %v" $v.ports.stream) -}}
{{- end -}}
{{- include "relay.check.enum" (list "logLevel" $v.logLevel (list "debug" "info" "warn" "error")) -}}
{{- range $k, $r := $v.resources -}}
{{- if not (has $k (list "requests" "limits")) -}}
{{- fail (printf "resources: %q is not one of requests, limits" $k) -}}
{{- end -}}
{{- include "relay.check.kind" (list (printf "resources.%s" $k) $r "map") -}}
{{- range $name, $q := $r -}}
{{- include "relay.check.enum" (list (printf "resources.%s key" $k) $name (list "cpu" "memory" "ephemeral-storage")) -}}
{{- include "relay.check.string" (list (printf "resources.%s.%s" $k $name) (toString $q) `^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$` 32 "a quantity (e.g. 100m, 256Mi)") -}}
{{- end -}}
{{- end -}}
{{- if not (dig "limits" "memory" nil $v.resources) -}}
{{- fail "resources.limits.memory: the relay's heap is sized under a memory limit (heapMiB); give one" -}}
{{- end -}}
{{- include "relay.check.int" (list "heapMiB" $v.heapMiB 64 65536) -}}
{{- include "relay.check.bool" (list "podDisruptionBudget.enabled" $v.podDisruptionBudget.enabled) -}}
{{- include "relay.check.int" (list "podDisruptionBudget.maxUnavailable" $v.podDisruptionBudget.maxUnavailable 1 100) -}}
{{- include "relay.check.bool" (list "networkPolicy.enabled" $v.networkPolicy.enabled) -}}
{{- include "relay.check.labels" (list "networkPolicy.clientLabels" $v.networkPolicy.clientLabels) -}}
{{- if and $v.networkPolicy.enabled (not $v.networkPolicy.clientLabels) -}}
{{- fail "networkPolicy.clientLabels: an empty selector would admit every pod; name the label the relay's clients carry" -}}
{{- end -}}
{{- include "relay.check.labels" (list "nodeSelector" $v.nodeSelector) -}}
{{- include "relay.check.labels" (list "podLabels" $v.podLabels) -}}
{{- range $k, $a := $v.podAnnotations -}}
{{- include "relay.check.string" (list "podAnnotations key" $k `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$` 316 "an annotation key ([prefix/]name)") -}}
{{- if not (kindIs "string" $a) -}}
{{- fail (printf "podAnnotations.%s: %s is not a string" $k (include "relay.show" $a)) -}}
{{- end -}}
{{- end -}}
{{- include "relay.check.kind" (list "tolerations" $v.tolerations "slice") -}}
{{- range $i, $t := $v.tolerations -}}
{{- include "relay.check.kind" (list (printf "tolerations[%d]" $i) $t "map") -}}
{{- range $k, $_ := $t -}}
{{- include "relay.check.enum" (list (printf "tolerations[%d] key" $i) $k (list "key" "operator" "value" "effect" "tolerationSeconds")) -}}
{{- end -}}
{{- end -}}
{{- end -}}

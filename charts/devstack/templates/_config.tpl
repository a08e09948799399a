{{/*
The effective devstack settings of a release, as YAML: the including chart's `service`, `port`,
`appProtocol`, `workload` and `devstack` values over the defaults below. Every other template reads them
through `include "devstack.config" . | fromYaml`, so a value missing from the including chart gets
the same default everywhere. `dig` (not `default`) keeps an explicit `false` or `""`. Every value is
checked here (`devstack.validate.shape`, `devstack.validate`), with or without a schema, before any
template puts it into an object.
*/}}
{{- define "devstack.config" -}}
{{- /*
Every template reads the config, many times per object, and checking it is most of a render's
time: it is computed once per release context (its values, namespace and Kubernetes version) and
kept in the context, so a caller that changes any of those still gets its own.
*/ -}}
{{- if not (hasKey . "devstack.io/configs") }}{{ $_ := set . "devstack.io/configs" dict }}{{ end -}}
{{- $configs := get . "devstack.io/configs" -}}
{{- $key := toJson (list .Values .Release.Namespace .Capabilities.KubeVersion.Version) -}}
{{- if not (hasKey $configs $key) }}{{ $_ := set $configs $key (include "devstack.config.compute" .) }}{{ end -}}
{{- get $configs $key -}}
{{- end -}}

{{- define "devstack.config.compute" -}}
{{- include "devstack.validate.shape" . -}}
{{- $d := .Values.devstack | default dict -}}
{{- $service := required "service: the logical service name is required" .Values.service -}}
{{- $feature := dig "feature" "" $d | toString -}}
{{- $name := $service -}}
{{- if $feature }}{{ $name = printf "%s-%s" $service $feature }}{{ end -}}
{{- $registry := dig "registry" "relay" $d -}}
{{- /*
The sidecar's measured footprint by registry mode (bench/, `npm run relay-sidecar -w @devstack/bench`):
following the relay it idles at 98-102 MiB RSS and stays under 121 MiB loaded; watching the API
server itself (client-node loaded) 162-172 MiB idle, 200 MiB loaded.
*/ -}}
{{- $footprint := dict "requests" (dict "cpu" "100m" "memory" "192Mi") "limits" (dict "memory" "384Mi") -}}
{{- if eq (toString $registry) "relay" }}{{ $footprint = dict "requests" (dict "cpu" "100m" "memory" "128Mi") "limits" (dict "memory" "256Mi") }}{{ end -}}
{{- $resources := dig "sidecar" "resources" dict $d -}}
{{- $hookFootprint := dict "requests" (dict "cpu" "50m" "memory" "64Mi") "limits" (dict "memory" "128Mi") -}}
{{- $hookResources := dig "hooks" "resources" dict $d -}}
{{- $sdkFootprint := dict "requests" (dict "cpu" "10m" "memory" "16Mi") "limits" (dict "memory" "32Mi") -}}
{{- $sdkResources := dig "sdk" "resources" dict $d -}}
{{- $appProtocol := .Values.appProtocol | default "http" | toString -}}
{{- $config := dict
  "service" $service
  "feature" $feature
  "lane" ($feature | default "base")
  "name" $name
  "namespace" .Release.Namespace
  "ttl" (dig "ttl" "" $d | toString)
  "keyName" (dig "keyName" "uber-ctx-key" $d)
  "appPort" (.Values.port | default 8080)
  "appProtocol" $appProtocol
  "appH2c" (has $appProtocol (list "h2c" "grpc"))
  "workload" (.Values.workload | default "service")
  "registry" $registry
  "relayUrl" (dig "relay" "url" "http://devstack-relay.devstack:7400" $d)
  "sidecar" (dict
    "enabled" (dig "sidecar" "enabled" true $d)
    "native" (dig "sidecar" "native" false $d)
    "repository" (dig "sidecar" "image" "repository" "devstack-sidecar" $d)
    "tag" (dig "sidecar" "image" "tag" "latest" $d)
    "image" (printf "%s:%s" (dig "sidecar" "image" "repository" "devstack-sidecar" $d) (dig "sidecar" "image" "tag" "latest" $d | toString))
    "pullPolicy" (dig "sidecar" "image" "pullPolicy" "IfNotPresent" $d)
    "outbound" (dig "sidecar" "ports" "outbound" 15001 $d)
    "inbound" (dig "sidecar" "ports" "inbound" 15000 $d)
    "admin" (dig "sidecar" "ports" "admin" 15020 $d)
    "strict" (dig "sidecar" "strict" false $d)
    "targets" (dig "sidecar" "targets" "service" $d)
    "passthrough" (dig "sidecar" "passthrough" true $d)
    "resources" (empty $resources | ternary $footprint $resources)
    "otelEndpoint" (dig "sidecar" "otelEndpoint" "" $d)
    "env" (dig "sidecar" "env" list $d))
  "sdk" (dict
    "inject" (dig "sdk" "inject" false $d)
    "proxyless" (dig "sdk" "proxyless" false $d)
    "repository" (dig "sdk" "image" "repository" "devstack-sdk" $d)
    "tag" (dig "sdk" "image" "tag" "latest" $d)
    "image" (printf "%s:%s" (dig "sdk" "image" "repository" "devstack-sdk" $d) (dig "sdk" "image" "tag" "latest" $d | toString))
    "pullPolicy" (dig "sdk" "image" "pullPolicy" "IfNotPresent" $d)
    "mountPath" (dig "sdk" "mountPath" "/devstack/sdk" $d)
    "resources" (empty $sdkResources | ternary $sdkFootprint $sdkResources))
  "edge" (dict
    "enabled" (dig "edge" "enabled" false $d)
    "host" (dig "edge" "host" "example.com" $d)
    "traefik" (dig "edge" "traefik" "v3" $d)
    "apiGroup" (dig "edge" "apiGroup" "traefik.io" $d)
    "entryPoints" (dig "edge" "entryPoints" (list "web") $d)
    "tls" (dig "edge" "tls" dict $d)
    "previewAuth" (dig "edge" "previewAuth" dict $d))
  "hooks" (dict
    "repository" (dig "hooks" "image" "repository" "devstack-hooks" $d)
    "tag" (dig "hooks" "image" "tag" "latest" $d)
    "image" (printf "%s:%s" (dig "hooks" "image" "repository" "devstack-hooks" $d) (dig "hooks" "image" "tag" "latest" $d | toString))
    "pullPolicy" (dig "hooks" "image" "pullPolicy" "IfNotPresent" $d)
    "backoffLimit" (dig "hooks" "backoffLimit" 2 $d)
    "activeDeadlineSeconds" (dig "hooks" "activeDeadlineSeconds" 120 $d)
    "resources" (empty $hookResources | ternary $hookFootprint $hookResources)
    "env" (dig "hooks" "env" list $d)
    "serviceAccountAnnotations" (dig "hooks" "serviceAccount" "annotations" dict $d)
    "secrets" (dig "hooks" "secrets" list $d)
    "queues" (dig "hooks" "queues" list $d)
    "subscriptions" (dig "hooks" "subscriptions" list $d)
    "topics" (dig "hooks" "topics" list $d)
    "databases" (dig "hooks" "databases" list $d)
    "sharedIngressRoute" (dict
      "enabled" (dig "hooks" "sharedIngressRoute" "enabled" false $d)
      "name" (dig "hooks" "sharedIngressRoute" "name" "" $d)
      "host" (dig "hooks" "sharedIngressRoute" "host" "" $d | default (dig "edge" "host" "example.com" $d))
      "service" (dig "hooks" "sharedIngressRoute" "service" "" $d | default $name)
      "port" (dig "hooks" "sharedIngressRoute" "port" 80 $d)
      "priority" (dig "hooks" "sharedIngressRoute" "priority" 0 $d)
      "create" (dig "hooks" "sharedIngressRoute" "create" false $d)))
-}}
{{- include "devstack.validate" (dict "config" $config "root" .) -}}
{{- toYaml $config -}}
{{- end -}}

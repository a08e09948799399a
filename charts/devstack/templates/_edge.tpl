{{/*
Traefik routes of the entry service (DESIGN.md, "Edge in a cluster"):
  base:   Host(<host>), and every <key>.<host> (a preview URL for any key; the base's sidecar reads
          the key from the Host);
  a copy: Host(<host>) && Header(<key name>, <key>), and Host(<key>.<host>) with a Middleware that
          sets the key header.
Each release owns its own IngressRoute and Middlewares; no shared object is patched. Traefik's
default priority is the rule's length, and the wildcard's regexp can be longer than a copy's Host,
so every route has an explicit priority: a copy's always beat the base's.
*/}}
{{- define "devstack.edge.priorities" -}}
base: 100
copy: 200
{{- end -}}

{{- define "devstack.edge" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- $e := $c.edge -}}
{{- if $e.enabled -}}
{{- $p := include "devstack.edge.priorities" . | fromYaml -}}
{{- $v2 := eq $e.traefik "v2" -}}
{{- $apiVersion := printf "%s/v1alpha1" $e.apiGroup -}}
{{- $host := printf "Host(`%s`)" $e.host -}}
{{- $auth := ternary (list) (list (dict "name" (printf "%s-preview-auth" $c.name))) (empty $e.previewAuth) -}}
{{- $backend := dict "name" $c.name "port" 80 -}}
{{- /* Traefik speaks HTTP/1.1 to a Service unless told otherwise; gRPC needs HTTP/2 end to end. */ -}}
{{- if $c.appH2c }}{{ $_ := set $backend "scheme" "h2c" }}{{ end -}}
{{- $backend = list $backend -}}
{{- $routes := list -}}
{{- if not $c.feature -}}
{{- $label := "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?" -}}
{{- $wildcard := ternary (printf "HostRegexp(`{key:%s}.%s`)" $label $e.host) (printf "HostRegexp(`^%s\\.%s$`)" $label (regexQuoteMeta $e.host)) $v2 -}}
{{- $routes = append $routes (dict "kind" "Rule" "match" $host "priority" $p.base "services" $backend) -}}
{{- $routes = append $routes (dict "kind" "Rule" "match" $wildcard "priority" $p.base "services" $backend "middlewares" $auth) -}}
{{- else -}}
{{- $header := printf "%s(`%s`, `%s`)" (ternary "Headers" "Header" $v2) $c.keyName $c.feature -}}
{{- $setKey := list (dict "name" (printf "%s-key" $c.name)) -}}
{{- $routes = append $routes (dict "kind" "Rule" "match" (printf "%s && %s" $host $header) "priority" $p.copy "services" $backend "middlewares" $auth) -}}
{{- $routes = append $routes (dict "kind" "Rule" "match" (printf "Host(`%s.%s`)" $c.feature $e.host) "priority" $p.copy "services" $backend "middlewares" (concat $auth $setKey)) -}}
{{- end -}}
apiVersion: {{ $apiVersion | quote }}
kind: IngressRoute
{{ include "devstack.metadata" (list . "") }}
spec:
  entryPoints: {{ toJson $e.entryPoints }}
  routes:
    {{- range $routes }}
    - kind: Rule
      match: {{ .match | quote }}
      priority: {{ .priority }}
      services: {{ toJson .services }}
      {{- with .middlewares }}
      middlewares: {{ toJson . }}
      {{- end }}
    {{- end }}
  {{- with $e.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if $c.feature }}
---
apiVersion: {{ $apiVersion | quote }}
kind: Middleware
{{ include "devstack.metadata" (list . "-key") }}
spec:
  headers:
    customRequestHeaders:
      {{ $c.keyName | quote }}: {{ $c.feature | quote }}
{{- end }}
{{- with $e.previewAuth }}
---
apiVersion: {{ $apiVersion | quote }}
kind: Middleware
{{ include "devstack.metadata" (list $ "-preview-auth") }}
spec:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The name of every object of a release: `<service>` for base, `<service>-<feature>` for a copy. */}}
{{- define "devstack.fullname" -}}
{{- (include "devstack.config" . | fromYaml).name -}}
{{- end -}}

{{/*
Pod selector: the service and the lane (`base` or the key; `base` is never a key). A Service cannot
select on a missing label, so the feature label alone could not keep base pods apart from a copy's.
*/}}
{{- define "devstack.selectorLabels" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
devstack.io/service: {{ $c.service | quote }}
devstack.io/lane: {{ $c.lane | quote }}
{{- end -}}

{{/* The labels of DESIGN.md (`devstack.io/service`, and `devstack.io/feature` on a copy) and Helm's. */}}
{{- define "devstack.labels" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{ include "devstack.selectorLabels" . }}
{{- if $c.feature }}
devstack.io/feature: {{ $c.feature | quote }}
{{- end }}
app.kubernetes.io/name: {{ $c.service | quote }}
app.kubernetes.io/instance: {{ $c.name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{/* A copy's `janitor/ttl`, on every object the release creates (kube-janitor deletes them then). */}}
{{- define "devstack.annotations" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if $c.ttl -}}
janitor/ttl: {{ $c.ttl | quote }}
{{- end -}}
{{- end -}}

{{/*
`metadata:` of an object of the release. Call with (list $ "suffix"): the suffix ("" for none) is
appended to the release's name.
*/}}
{{- define "devstack.metadata" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
metadata:
  name: {{ printf "%s%s" (include "devstack.fullname" $root) $suffix | quote }}
  namespace: {{ $root.Release.Namespace | quote }}
  labels:
    {{- include "devstack.labels" $root | nindent 4 }}
  {{- with include "devstack.annotations" $root }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
{{- end -}}

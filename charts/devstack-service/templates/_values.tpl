{{/*
The app's own values, checked by the templates as the library checks the devstack ones (with
`--skip-schema-validation`, or this chart's templates copied into a team's chart, no schema runs).
Renders nothing; fails naming the value.
*/}}
{{- define "devstack-service.validate" -}}
{{- include "devstack.check.map" (list "image" .Values.image) -}}
{{- $image := .Values.image | default dict -}}
{{- if not $image.repository }}{{ fail "image.repository: the app's image is required" }}{{ end -}}
{{- include "devstack.check.image" (list "image" $image.repository (dig "tag" "latest" $image) (dig "pullPolicy" "IfNotPresent" $image)) -}}
{{- include "devstack.check.list" (list "args" .Values.args) -}}
{{- range $i, $a := .Values.args -}}
{{- if not (kindIs "string" $a) }}{{ fail (printf "args[%d]: %s is not a string" $i (include "devstack.show" $a)) }}{{ end -}}
{{- end -}}
{{- if not (kindIs "invalid" .Values.replicas) }}{{ include "devstack.check.int" (list "replicas" .Values.replicas 0 -1) }}{{ end -}}
{{- include "devstack.check.env" (list "env" .Values.env) -}}
{{- include "devstack.check.resources" (list "resources" .Values.resources) -}}
{{- end -}}

{{/*
What the sidecar's Kubernetes registry needs: a ServiceAccount, and exactly get, list and watch on
Services and EndpointSlices of the release's namespace. One set per release, so a copy's release
owns its own and uninstalling it leaves the base untouched. Nothing without the sidecar, nothing
with the relay registry (devstack-relay holds the only list and watch).
*/}}
{{- define "devstack.rbac" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if and $c.sidecar.enabled (eq $c.registry "kubernetes") -}}
apiVersion: v1
kind: ServiceAccount
{{ include "devstack.metadata" (list . "-devstack") }}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
{{ include "devstack.metadata" (list . "-devstack") }}
rules:
  - apiGroups: [""]
    resources: [services]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
{{ include "devstack.metadata" (list . "-devstack") }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ printf "%s-devstack" $c.name | quote }}
subjects:
  - kind: ServiceAccount
    name: {{ printf "%s-devstack" $c.name | quote }}
    namespace: {{ .Release.Namespace | quote }}
{{- end -}}
{{- end -}}

{{/*
The hook Jobs of a feature copy (`devstack.hooks.plan` says which) and what they run as: one
ServiceAccount, Role and RoleBinding per release, with exactly the rules those commands need.

Every object here is a Helm hook, so Helm creates it before the release's own objects and none of
it outlives the hook run that needs it:
- the ServiceAccount, Role and RoleBinding have a lower weight (-10) than every Job, so they exist
  before the first Job starts; Helm deletes `hook-succeeded` objects only once every hook of the
  event has succeeded, so they stay until the last Job ran;
- `before-hook-creation` removes what a failed run left (kept for `kubectl logs`) before the next
  run creates it again.
*/}}
{{- define "devstack.hooks" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- $h := $c.hooks -}}
{{- $plan := include "devstack.hooks.plan" . | fromYaml -}}
{{- if $plan.jobs -}}
{{- $account := include "devstack.hooks.name" (list . "") -}}
{{- $events := ternary "pre-install,pre-upgrade,pre-delete" "pre-install,pre-upgrade" $plan.deleteEvents -}}
{{- $rbac := dict "root" . "name" $account "events" $events "weight" -10 -}}
apiVersion: v1
kind: ServiceAccount
{{ include "devstack.hooks.metadata" $rbac }}
{{- with $h.serviceAccountAnnotations }}
{{- toYaml . | nindent 4 }}
{{- end }}
# Mounted only into the Jobs whose command talks to the Kubernetes API.
automountServiceAccountToken: false
{{- if $plan.rules }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
{{ include "devstack.hooks.metadata" $rbac }}
rules:
  {{- range $plan.rules }}
  - {{ toJson . }}
  {{- end }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
{{ include "devstack.hooks.metadata" $rbac }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $account | quote }}
subjects:
  - kind: ServiceAccount
    name: {{ $account | quote }}
    namespace: {{ $c.namespace | quote }}
{{- end }}
{{- range $plan.jobs }}
---
apiVersion: batch/v1
kind: Job
{{ include "devstack.hooks.metadata" (dict "root" $ "name" (include "devstack.hooks.name" (list $ (printf "-%s" .suffix))) "events" .events "weight" .weight) }}
spec:
  # The command retries conflicts and API errors itself; this covers a lost pod.
  backoffLimit: {{ $h.backoffLimit | int }}
  activeDeadlineSeconds: {{ $h.activeDeadlineSeconds | int }}
  template:
    metadata:
      # Not the lane label: the release's Service selects on it, and a hook is no endpoint.
      labels:
        devstack.io/service: {{ $c.service | quote }}
        devstack.io/feature: {{ $c.feature | quote }}
        app.kubernetes.io/instance: {{ $c.name | quote }}
        app.kubernetes.io/component: devstack-hooks
    spec:
      serviceAccountName: {{ $account | quote }}
      automountServiceAccountToken: {{ .kube }}
      restartPolicy: Never
      containers:
        - name: hook
          image: {{ $h.image | quote }}
          imagePullPolicy: {{ $h.pullPolicy | quote }}
          args: {{ toJson .args }}
          {{- with $h.env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .adminSecret }}
          # The admin connection's libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE).
          envFrom:
            - secretRef: { name: {{ . | quote }} }
          {{- end }}
          resources:
            {{- toYaml $h.resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            # The image's `node` user; a numeric id lets the kubelet check runAsNonRoot.
            runAsUser: 1000
            runAsGroup: 1000
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
            seccompProfile: { type: RuntimeDefault }
{{- end }}
{{- end }}
{{- end -}}

{{/*
`metadata:` of a hook object: the release's labels, the hook annotations and a copy's
`janitor/ttl`. Call with (dict "root" $ "name" NAME "events" EVENTS "weight" N); the
annotations block is left open last, so a caller may add to it.
*/}}
{{- define "devstack.hooks.metadata" -}}
metadata:
  name: {{ .name | quote }}
  namespace: {{ .root.Release.Namespace | quote }}
  labels:
    {{- include "devstack.labels" .root | nindent 4 }}
    app.kubernetes.io/component: devstack-hooks
  annotations:
    helm.sh/hook: {{ .events | quote }}
    helm.sh/hook-weight: {{ .weight | toString | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- with include "devstack.annotations" .root }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}

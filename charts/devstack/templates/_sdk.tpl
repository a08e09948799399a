{{/*
The SDK injected into a Node app with no image change, as the OpenTelemetry Operator injects its
Node.js auto-instrumentation: an init container from the devstack-sdk image (docker/sdk.Dockerfile)
copies the SDK, with its runtime dependencies, into an emptyDir; the app container mounts it and
loads it with NODE_OPTIONS=--import <mountPath>/register.mjs. Propagation only: the app carries
the key on its calls, and the sidecar routes them.
*/}}

{{/* Where the image keeps the SDK (docker/sdk.Dockerfile): the init container copies it from there. */}}
{{- define "devstack.sdk.imageRoot" -}}
/devstack-sdk
{{- end -}}

{{/* The init container that copies the SDK into the pod's devstack-sdk volume. */}}
{{- define "devstack.sdk.initContainer" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- $k := $c.sdk -}}
- name: devstack-sdk
  image: {{ $k.image | quote }}
  imagePullPolicy: {{ $k.pullPolicy | quote }}
  # "<root>/." copies the folder's content, whatever it holds; cp -R keeps the files readable by
  # every user (the app may run as any user), and writes nothing but the volume.
  command: ["cp", "-R", {{ printf "%s/." (include "devstack.sdk.imageRoot" .) | quote }}, {{ $k.mountPath | quote }}]
  resources:
    {{- toYaml $k.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities: { drop: [ALL] }
    seccompProfile: { type: RuntimeDefault }
  volumeMounts:
    - { name: devstack-sdk, mountPath: {{ $k.mountPath | quote }} }
{{- end -}}

{{/* The pod volume the SDK is copied into (an entry of `volumes:`), or nothing. */}}
{{- define "devstack.sdk.volume" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if $c.sdk.inject -}}
# The SDK and its dependencies take about 7 MiB.
- { name: devstack-sdk, emptyDir: { sizeLimit: 64Mi } }
{{- end -}}
{{- end -}}

{{/* The app container's `volumeMounts` entries: the SDK, read-only; or nothing. */}}
{{- define "devstack.app.volumeMounts" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if $c.sdk.inject -}}
- { name: devstack-sdk, mountPath: {{ $c.sdk.mountPath | quote }}, readOnly: true }
{{- end -}}
{{- end -}}

{{/*
The SDK's settings, the sidecar's values under the variables both read: the key's name and, in a
copy, its key for calls that arrive without one. The app never gets Kubernetes credentials: the
SDK's registry is the relay's stream, given to a worker (its lane decisions need readiness) and to
an injected SDK with sdk.proxyless, in relay mode only; otherwise the SDK only carries the key.
*/}}
{{- define "devstack.sdk.env" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
- { name: DEVSTACK_KEY_NAME, value: {{ $c.keyName | quote }} }
{{- if $c.feature }}
- { name: DEVSTACK_DEFAULT_KEY, value: {{ $c.feature | quote }} }
{{- end }}
{{- if and (eq $c.registry "relay") (or (eq $c.workload "worker") $c.sdk.proxyless) }}
- { name: DEVSTACK_REGISTRY, value: {{ $c.relayUrl | quote }} }
- name: DEVSTACK_NAMESPACE
  valueFrom: { fieldRef: { apiVersion: v1, fieldPath: metadata.namespace } }
{{- end }}
{{- end -}}

{{/*
The app container's whole `env`, called with (list $ APP_ENV), APP_ENV being the app's own entries:
`devstack.app.env`, then with sdk.inject (or `workload: worker`) the SDK's variables, a worker's
DEVSTACK_SERVICE too (an app's entry of the same name replaces the chart's), the app's entries, and NODE_OPTIONS last, the app's own with the SDK's
--import appended. Kubernetes cannot append to a value it reads from a ConfigMap or Secret: such an
entry is renamed DEVSTACK_APP_NODE_OPTIONS and NODE_OPTIONS refers to it as $(...), which
Kubernetes expands, as it does for any variable defined before.
*/}}
{{- define "devstack.app.envWith" -}}
{{- $root := index . 0 -}}
{{- $appEnv := index . 1 -}}
{{- include "devstack.check.env" (list "env" $appEnv) -}}
{{- $appEnv = $appEnv | default list -}}
{{- $c := include "devstack.config" $root | fromYaml -}}
{{- $env := include "devstack.app.env" $root | fromYamlArray -}}
{{- $names := list -}}
{{- range $appEnv }}{{ $names = append $names .name }}{{ end -}}
{{- $worker := eq $c.workload "worker" -}}
{{- if or $c.sdk.inject $worker -}}
{{- range include "devstack.sdk.env" $root | fromYamlArray -}}
{{- if not (has .name $names) }}{{ $env = append $env . }}{{ end -}}
{{- end -}}
{{- /* A worker's lane consumption decides for its own registry service. */ -}}
{{- if and $worker (not (has "DEVSTACK_SERVICE" $names)) }}{{ $env = append $env (dict "name" "DEVSTACK_SERVICE" "value" $c.service) }}{{ end -}}
{{- end -}}
{{- if $c.sdk.inject -}}
{{- /* The last entry of a name is the one Kubernetes uses. */ -}}
{{- $own := dict -}}
{{- range $appEnv -}}
{{- if eq .name "NODE_OPTIONS" }}{{ $own = . }}{{ else }}{{ $env = append $env . }}{{ end -}}
{{- end -}}
{{- $import := printf "--import %s/register.mjs" $c.sdk.mountPath -}}
{{- if hasKey $own "valueFrom" -}}
{{- $env = append $env (dict "name" "DEVSTACK_APP_NODE_OPTIONS" "valueFrom" $own.valueFrom) -}}
{{- $env = append $env (dict "name" "NODE_OPTIONS" "value" (printf "$(DEVSTACK_APP_NODE_OPTIONS) %s" $import)) -}}
{{- else if trim (toString ($own.value | default "")) -}}
{{- $env = append $env (dict "name" "NODE_OPTIONS" "value" (printf "%s %s" (toString $own.value) $import)) -}}
{{- else -}}
{{- $env = append $env (dict "name" "NODE_OPTIONS" "value" $import) -}}
{{- end -}}
{{- else -}}
{{- $env = concat $env $appEnv -}}
{{- end -}}
{{- with $env }}{{ toYaml . }}{{ end -}}
{{- end -}}

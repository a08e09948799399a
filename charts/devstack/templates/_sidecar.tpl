{{/*
The sidecar container. Everything is set through DEVSTACK_* variables (the image's entrypoint is the
sidecar command), so `kubectl get pod -o yaml` shows the whole configuration.
*/}}
{{- define "devstack.sidecar.container" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- $s := $c.sidecar -}}
- name: devstack-sidecar
  image: {{ $s.image | quote }}
  imagePullPolicy: {{ $s.pullPolicy | quote }}
  {{- if $s.native }}
  restartPolicy: Always
  {{- end }}
  ports:
    - { name: devstack-in, containerPort: {{ $s.inbound | int }}, protocol: TCP }
    - { name: devstack-admin, containerPort: {{ $s.admin | int }}, protocol: TCP }
  env:
    {{- if eq $c.registry "relay" }}
    # The relay's stream: no API credentials, no Kubernetes client. The relay picks the targets.
    - { name: DEVSTACK_REGISTRY, value: {{ $c.relayUrl | quote }} }
    - name: POD_NAMESPACE
      valueFrom: { fieldRef: { apiVersion: v1, fieldPath: metadata.namespace } }
    {{- else }}
    - { name: DEVSTACK_REGISTRY, value: k8s }
    - { name: DEVSTACK_NAMESPACE, value: {{ $c.namespace | quote }} }
    - { name: DEVSTACK_TARGETS, value: {{ $s.targets | quote }} }
    {{- end }}
    # Loopback only: the app in this pod is the outbound listener's one client.
    - { name: DEVSTACK_OUTBOUND_HOST, value: "127.0.0.1" }
    - { name: DEVSTACK_OUTBOUND_PORT, value: {{ $s.outbound | quote }} }
    - { name: DEVSTACK_INBOUND_PORT, value: {{ $s.inbound | quote }} }
    - { name: DEVSTACK_APP_PORT, value: {{ $c.appPort | quote }} }
    - { name: DEVSTACK_APP_PROTOCOL, value: {{ ternary "h2c" "http1" $c.appH2c | quote }} }
    - { name: DEVSTACK_ADMIN_PORT, value: {{ $s.admin | quote }} }
    - { name: DEVSTACK_KEY_NAME, value: {{ $c.keyName | quote }} }
    - { name: DEVSTACK_STRICT, value: {{ $s.strict | toString | quote }} }
    - { name: DEVSTACK_PASSTHROUGH, value: {{ $s.passthrough | toString | quote }} }
    {{- if $c.feature }}
    # Calls that arrive without a key stay in this copy's lane.
    - { name: DEVSTACK_DEFAULT_KEY, value: {{ $c.feature | quote }} }
    {{- end }}
    {{- if $c.edge.enabled }}
    # The entry service reads the key of a preview URL (<key>.<host>) from the Host.
    - { name: DEVSTACK_DOMAIN, value: {{ $c.edge.host | quote }} }
    {{- end }}
    {{- if $s.otelEndpoint }}
    - { name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ $s.otelEndpoint | quote }} }
    - { name: OTEL_SERVICE_NAME, value: {{ printf "%s-devstack-sidecar" $c.service | quote }} }
    - { name: OTEL_RESOURCE_ATTRIBUTES, value: {{ printf "devstack.service=%s,devstack.lane=%s" $c.service $c.lane | quote }} }
    {{- end }}
    {{- with $s.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if $s.native }}
  # A native sidecar is started before the app: the app's first calls find the routes loaded.
  startupProbe:
    httpGet: { path: /readyz, port: devstack-admin }
    periodSeconds: 1
    failureThreshold: 120
  {{- end }}
  readinessProbe:
    httpGet: { path: /readyz, port: devstack-admin }
    periodSeconds: 5
    failureThreshold: 2
  livenessProbe:
    httpGet: { path: /healthz, port: devstack-admin }
    periodSeconds: 10
    failureThreshold: 3
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    # The image's `node` user; a numeric id lets the kubelet check runAsNonRoot.
    runAsUser: 1000
    runAsGroup: 1000
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities: { drop: [ALL] }
    seccompProfile: { type: RuntimeDefault }
  {{- if eq $c.registry "kubernetes" }}
  volumeMounts:
    - name: devstack-kube-api
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
  {{- end }}
{{- end -}}

{{/* Sidecar entries for the pod's `containers:` list (empty for a native sidecar or none). */}}
{{- define "devstack.containers" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if and $c.sidecar.enabled (not $c.sidecar.native) -}}
{{ include "devstack.sidecar.container" . }}
{{- end -}}
{{- end -}}

{{/*
The pod's `initContainers:` key, or nothing: the SDK's copy (with sdk.inject), then the native
sidecar. The copy takes about a second at most (7 MiB), so the sidecar's start is barely held up.
*/}}
{{- define "devstack.initContainers" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- $native := and $c.sidecar.enabled $c.sidecar.native -}}
{{- if or $c.sdk.inject $native -}}
initContainers:
  {{- if $c.sdk.inject }}
  {{- include "devstack.sdk.initContainer" . | nindent 2 }}
  {{- end }}
  {{- if $native }}
  {{- include "devstack.sidecar.container" . | nindent 2 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
Pod-level settings. With the kubernetes registry: the registry's ServiceAccount, with its token
mounted into the sidecar only (the app container gets no API credentials) and the token's projected
volume. With the relay: no token at all (CIS 5.1.6), the pod's ServiceAccount is the namespace's
default. With sdk.inject, the volume the SDK is copied into.
*/}}
{{- define "devstack.podSpec" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if and $c.sidecar.enabled (eq $c.registry "relay") -}}
automountServiceAccountToken: false
{{- with include "devstack.sdk.volume" . }}
volumes:
  {{- . | nindent 2 }}
{{- end }}
{{- else if $c.sidecar.enabled -}}
serviceAccountName: {{ printf "%s-devstack" $c.name | quote }}
automountServiceAccountToken: false
volumes:
  - name: devstack-kube-api
    projected:
      defaultMode: 292
      sources:
        - serviceAccountToken: { path: token, expirationSeconds: 3607 }
        - configMap: { name: kube-root-ca.crt, items: [{ key: ca.crt, path: ca.crt }] }
        - downwardAPI: { items: [{ path: namespace, fieldRef: { apiVersion: v1, fieldPath: metadata.namespace } }] }
  {{- with include "devstack.sdk.volume" . }}
  {{- . | nindent 2 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
The app container's environment: with the sidecar, every plain-HTTP call goes through its outbound
listener (`HTTP_PROXY`; Node reads it with NODE_USE_ENV_PROXY=1; gRPC clients by `CONNECT`).
Loopback stays direct.
*/}}
{{- define "devstack.app.env" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if $c.sidecar.enabled -}}
- { name: HTTP_PROXY, value: {{ printf "http://127.0.0.1:%v" $c.sidecar.outbound | quote }} }
- { name: http_proxy, value: {{ printf "http://127.0.0.1:%v" $c.sidecar.outbound | quote }} }
- { name: NODE_USE_ENV_PROXY, value: "1" }
- { name: NO_PROXY, value: "localhost,127.0.0.1,::1" }
# grpc-js reads the lower-case names only (http_proxy and no_proxy).
- { name: no_proxy, value: "localhost,127.0.0.1,::1" }
{{- end -}}
{{- end -}}

{{/*
The `appProtocol` of the Service port, "" for HTTP/1.1. The Kubernetes registry makes a port's
targets h2c by it (a port's name never does), and it holds with or without the sidecar: the
sidecar's inbound listener takes h2c and HTTP/1.1 on one port.
*/}}
{{- define "devstack.appProtocol" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- if eq $c.appProtocol "grpc" -}}
grpc
{{- else if eq $c.appProtocol "h2c" -}}
kubernetes.io/h2c
{{- end -}}
{{- end -}}

{{/* The container port a Service sends to: the sidecar's inbound listener, else the app's `http`. */}}
{{- define "devstack.targetPort" -}}
{{- $c := include "devstack.config" . | fromYaml -}}
{{- ternary "devstack-in" "http" $c.sidecar.enabled -}}
{{- end -}}

{{/*
`clusterIP: None` for a worker (`workload: worker`), else nothing: a worker takes no calls, and its
Service is there so that its lane is in the registry, ready as its EndpointSlice says. Its port
stays (the Kubernetes registry takes a Service with a TCP port only, and reads readiness from the
endpoints of that port); nothing needs to listen on it.
*/}}
{{- define "devstack.clusterIP" -}}
{{- if eq (include "devstack.config" . | fromYaml).workload "worker" -}}
clusterIP: None
{{- end -}}
{{- end -}}

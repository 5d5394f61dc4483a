{{/*
Named templates. Everything that builds the pod takes this chart's own scope
(.Values, .Release, .Chart), so the standalone Deployment and a parent chart that
includes the sidecar templates with `.Subcharts.<name>` render the same container.
*/}}

{{- define "jetstream-reconciler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jetstream-reconciler.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "jetstream-reconciler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jetstream-reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jetstream-reconciler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jetstream-reconciler.labels" -}}
helm.sh/chart: {{ include "jetstream-reconciler.chart" . }}
{{ include "jetstream-reconciler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "jetstream-reconciler.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "jetstream-reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "jetstream-reconciler.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when the chart renders the manifests ConfigMap from .Values.streams. */}}
{{- define "jetstream-reconciler.inlineManifests" -}}
{{- if and (not .Values.manifests.existingConfigMap) (or .Values.streams (not .Values.gitSync.enabled)) -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the pod mounts a manifests ConfigMap (rendered or existing). */}}
{{- define "jetstream-reconciler.usesConfigMap" -}}
{{- if or .Values.manifests.existingConfigMap (include "jetstream-reconciler.inlineManifests" .) -}}
true
{{- end -}}
{{- end -}}

{{- define "jetstream-reconciler.configMapName" -}}
{{- default (printf "%s-manifests" (include "jetstream-reconciler.fullname" . | trunc 53 | trimSuffix "-")) .Values.manifests.existingConfigMap -}}
{{- end -}}

{{/* The directories the reconciler watches, one per line. */}}
{{- define "jetstream-reconciler.watchPaths" -}}
{{- if include "jetstream-reconciler.usesConfigMap" . }}
{{ .Values.manifests.mountPath }}
{{- end }}
{{- with .Values.gitSync }}
{{- if .enabled }}
{{ trimSuffix "/" (printf "%s/%s/%s" (trimSuffix "/" .root) .link (trimPrefix "/" .subdir)) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Names of the auth methods in use, for messages. */}}
{{- define "jetstream-reconciler.authMethods" -}}
{{- $methods := list -}}
{{- with .Values.auth -}}
{{- if .credsKey }}{{ $methods = append $methods "credsKey" }}{{ end -}}
{{- if .nkeyKey }}{{ $methods = append $methods "nkeyKey" }}{{ end -}}
{{- if or .user .passwordKey }}{{ $methods = append $methods "user/passwordKey" }}{{ end -}}
{{- if .tokenKey }}{{ $methods = append $methods "tokenKey" }}{{ end -}}
{{- end -}}
{{- join ", " $methods -}}
{{- end -}}

{{/*
Cross-field rules that values.schema.json cannot say well. Each message names the
key and what to write instead.
*/}}
{{- define "jetstream-reconciler.validate" -}}
{{- $v := .Values -}}
{{- $methods := include "jetstream-reconciler.authMethods" . -}}
{{- if contains "," $methods -}}
{{- fail (printf "auth: use one authentication method, not several (set: %s); empty the others" $methods) -}}
{{- end -}}
{{- if and $methods (not $v.auth.existingSecret) -}}
{{- fail (printf "auth.existingSecret: name the Secret that holds the key(s) set in auth (%s)" $methods) -}}
{{- end -}}
{{- if and $v.auth.user (not $v.auth.passwordKey) -}}
{{- fail "auth.passwordKey: auth.user is set, so name the Secret key holding its password" -}}
{{- end -}}
{{- if and $v.auth.passwordKey (not $v.auth.user) -}}
{{- fail "auth.user: auth.passwordKey is set, so write the user name in auth.user" -}}
{{- end -}}
{{- with $v.tls -}}
{{- if .enabled -}}
{{- if not .existingSecret -}}
{{- fail "tls.existingSecret: tls.enabled is true, so name the Secret holding the certificate files" -}}
{{- end -}}
{{- if not (or .certKey .keyKey .caKey) -}}
{{- fail "tls: set tls.caKey and/or tls.certKey with tls.keyKey, or set tls.enabled: false" -}}
{{- end -}}
{{- if and .certKey (not .keyKey) -}}
{{- fail "tls.keyKey: tls.certKey is set, so name the Secret key holding the private key" -}}
{{- end -}}
{{- if and .keyKey (not .certKey) -}}
{{- fail "tls.certKey: tls.keyKey is set, so name the Secret key holding the certificate" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $v.gitSync -}}
{{- if .enabled -}}
{{- if not .repo -}}
{{- fail "gitSync.repo: gitSync.enabled is true, so write the repository URL (https://… or git@host:org/repo.git)" -}}
{{- end -}}
{{- if and (or .passwordKey .sshKeyKey .knownHostsKey) (not .existingSecret) -}}
{{- fail "gitSync.existingSecret: name the Secret that holds gitSync.passwordKey / sshKeyKey / knownHostsKey" -}}
{{- end -}}
{{- if and .passwordKey (not .username) -}}
{{- fail "gitSync.username: gitSync.passwordKey is set, so write the user name (any non-empty name for a token)" -}}
{{- end -}}
{{- if and .sshKeyKey (not .knownHostsKey) -}}
{{- fail "gitSync.knownHostsKey: an ssh key needs the server's host keys too (ssh-keyscan HOST > known_hosts, stored in the Secret)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq (int $v.http.port) 0) (or $v.metrics.service.enabled $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled) -}}
{{- fail "http.port: metrics need the HTTP server; set a port (default 8081) or disable metrics.service, metrics.serviceMonitor and metrics.podMonitor" -}}
{{- end -}}
{{- end -}}

{{/*
A loopback http.host is unreachable for whoever calls the HTTP port from outside the
pod: the kubelet's probes and Prometheus. Input as for the container.
*/}}
{{- define "jetstream-reconciler.validateHttpHost" -}}
{{- $v := .ctx.Values -}}
{{- $host := lower (trimSuffix "]" (trimPrefix "[" (toString $v.http.host))) -}}
{{- if and (int $v.http.port) (or (hasPrefix "127." $host) (eq $host "localhost" "::1")) -}}
{{- $users := list -}}
{{- if $v.probes.liveness.enabled }}{{ $users = append $users "probes.liveness" }}{{ end -}}
{{- if and $v.probes.readiness.enabled (or (not .sidecar) $v.sidecar.readinessProbe) }}{{ $users = append $users "probes.readiness" }}{{ end -}}
{{- if and (not .sidecar) $v.metrics.service.enabled }}{{ $users = append $users "metrics.service" }}{{ end -}}
{{- if and (not .sidecar) $v.metrics.serviceMonitor.enabled }}{{ $users = append $users "metrics.serviceMonitor" }}{{ end -}}
{{- if $v.metrics.podMonitor.enabled }}{{ $users = append $users "metrics.podMonitor" }}{{ end -}}
{{- if $users -}}
{{- fail (printf "http.host: %s is a loopback address, which %s cannot reach from outside the pod; set http.host to 0.0.0.0 (or the pod's address), or turn %s off" $v.http.host (join " and " $users) (ternary "it" "them" (eq (len $users) 1))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The reconciler container. Input: dict "ctx" (this chart's scope) and "sidecar"
(bool: connect to the NATS server in the same pod, no readiness probe by default).
*/}}
{{- define "jetstream-reconciler.container" -}}
{{- $ctx := .ctx -}}
{{- $v := $ctx.Values -}}
{{- $sidecar := .sidecar -}}
{{- include "jetstream-reconciler.validate" $ctx -}}
{{- $port := int $v.http.port -}}
{{- $portName := ternary "reconciler" "http" $sidecar -}}
{{- include "jetstream-reconciler.validateHttpHost" (dict "ctx" $ctx "sidecar" $sidecar) -}}
name: jetstream-reconciler
image: {{ include "jetstream-reconciler.image" $ctx | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
args:
  - watch
  - --server
  - {{ ternary $v.nats.sidecarUrl $v.nats.url $sidecar | quote }}
  {{- with $v.auth }}
  {{- if .credsKey }}
  - --creds
  - /etc/jetstream-reconciler/auth/nats.creds
  {{- end }}
  {{- if .nkeyKey }}
  - --nkey
  - /etc/jetstream-reconciler/auth/nkey.seed
  {{- end }}
  {{- if .passwordKey }}
  - --user
  - {{ .user | quote }}
  - --password-file
  - /etc/jetstream-reconciler/auth/password
  {{- end }}
  {{- if .tokenKey }}
  - --token-file
  - /etc/jetstream-reconciler/auth/token
  {{- end }}
  {{- end }}
  {{- with $v.tls }}
  {{- if .enabled }}
  {{- if .certKey }}
  - --tls-cert
  - /etc/jetstream-reconciler/tls/tls.crt
  - --tls-key
  - /etc/jetstream-reconciler/tls/tls.key
  {{- end }}
  {{- if .caKey }}
  - --tls-ca
  - /etc/jetstream-reconciler/tls/ca.crt
  {{- end }}
  {{- end }}
  {{- end }}
  - --log-format
  - {{ $v.logging.format | quote }}
  - --log-level
  - {{ $v.logging.level | quote }}
  - --resync
  - {{ $v.reconcile.resync | quote }}
  - --concurrency
  - {{ $v.reconcile.concurrency | int | quote }}
  - --http-port
  - {{ $port | quote }}
  - --http-host
  - {{ $v.http.host | quote }}
  {{- if $v.reconcile.allowDataLoss }}
  - --allow-data-loss
  {{- end }}
  - --owner
  - {{ $v.reconcile.owner | quote }}
  {{- if $v.reconcile.prune.enabled }}
  - --prune
  - --prune-grace
  - {{ $v.reconcile.prune.grace | quote }}
  - --max-deletes
  - {{ $v.reconcile.prune.maxDeletes | int | quote }}
  {{- end }}
  {{- range $v.extraArgs }}
  - {{ . | quote }}
  {{- end }}
  {{- range splitList "\n" (include "jetstream-reconciler.watchPaths" $ctx | trim) }}
  - {{ . | quote }}
  {{- end }}
{{- with $v.extraEnv }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $port }}
ports:
  - name: {{ $portName }}
    containerPort: {{ $port }}
    protocol: TCP
{{- with $v.probes.liveness }}
{{- if .enabled }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ $portName }}
  initialDelaySeconds: {{ .initialDelaySeconds }}
  periodSeconds: {{ .periodSeconds }}
  timeoutSeconds: {{ .timeoutSeconds }}
  failureThreshold: {{ .failureThreshold }}
{{- end }}
{{- end }}
{{- with $v.probes.readiness }}
{{- if and .enabled (or (not $sidecar) $v.sidecar.readinessProbe) }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ $portName }}
  initialDelaySeconds: {{ .initialDelaySeconds }}
  periodSeconds: {{ .periodSeconds }}
  timeoutSeconds: {{ .timeoutSeconds }}
  failureThreshold: {{ .failureThreshold }}
{{- end }}
{{- end }}
{{- end }}
volumeMounts:
  {{- if include "jetstream-reconciler.usesConfigMap" $ctx }}
  - name: reconciler-manifests
    mountPath: {{ $v.manifests.mountPath | quote }}
    readOnly: true
  {{- end }}
  {{- if $v.gitSync.enabled }}
  - name: reconciler-git
    mountPath: {{ $v.gitSync.root | quote }}
    readOnly: true
  {{- end }}
  {{- if include "jetstream-reconciler.authMethods" $ctx }}
  - name: reconciler-auth
    mountPath: /etc/jetstream-reconciler/auth
    readOnly: true
  {{- end }}
  {{- if $v.tls.enabled }}
  - name: reconciler-tls
    mountPath: /etc/jetstream-reconciler/tls
    readOnly: true
  {{- end }}
  {{- with $v.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $v.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The git-sync container (this chart's scope). */}}
{{- define "jetstream-reconciler.gitSync.container" -}}
{{- $g := .Values.gitSync -}}
name: git-sync
image: {{ printf "%s:%s" $g.image.repository $g.image.tag | quote }}
imagePullPolicy: {{ $g.image.pullPolicy }}
args:
  - {{ printf "--repo=%s" $g.repo | quote }}
  - {{ printf "--ref=%s" $g.ref | quote }}
  - {{ printf "--root=%s" $g.root | quote }}
  - {{ printf "--link=%s" $g.link | quote }}
  - {{ printf "--period=%s" $g.period | quote }}
  - {{ printf "--depth=%d" (int $g.depth) | quote }}
  {{- if $g.username }}
  - {{ printf "--username=%s" $g.username | quote }}
  {{- end }}
  {{- if $g.passwordKey }}
  - --password-file=/etc/git-secret/password
  {{- end }}
  {{- if $g.sshKeyKey }}
  - --ssh-key-file=/etc/git-secret/ssh
  - --ssh-known-hosts-file=/etc/git-secret/known_hosts
  {{- end }}
  {{- range $g.extraArgs }}
  - {{ . | quote }}
  {{- end }}
env:
  # git needs a writable HOME; the root filesystem is read-only.
  - name: HOME
    value: /tmp
volumeMounts:
  - name: reconciler-git
    mountPath: {{ $g.root | quote }}
  - name: reconciler-git-tmp
    mountPath: /tmp
  {{- if or $g.passwordKey $g.sshKeyKey }}
  - name: reconciler-git-secret
    mountPath: /etc/git-secret
    readOnly: true
  {{- end }}
{{- with $g.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $g.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The pod's volumes, as list items (this chart's scope). */}}
{{- define "jetstream-reconciler.volumes" -}}
{{- $v := .Values -}}
{{- if include "jetstream-reconciler.usesConfigMap" . }}
- name: reconciler-manifests
  configMap:
    name: {{ include "jetstream-reconciler.configMapName" . }}
{{- end }}
{{- with $v.gitSync }}
{{- if .enabled }}
- name: reconciler-git
  emptyDir: {}
- name: reconciler-git-tmp
  emptyDir: {}
{{- if or .passwordKey .sshKeyKey }}
- name: reconciler-git-secret
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: {{ $v.auth.defaultMode }}
    items:
      {{- if .passwordKey }}
      - key: {{ .passwordKey | quote }}
        path: password
      {{- end }}
      {{- if .sshKeyKey }}
      - key: {{ .sshKeyKey | quote }}
        path: ssh
      - key: {{ .knownHostsKey | quote }}
        path: known_hosts
      {{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.auth }}
{{- if include "jetstream-reconciler.authMethods" $ }}
- name: reconciler-auth
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: {{ .defaultMode }}
    items:
      {{- if .credsKey }}
      - key: {{ .credsKey | quote }}
        path: nats.creds
      {{- end }}
      {{- if .nkeyKey }}
      - key: {{ .nkeyKey | quote }}
        path: nkey.seed
      {{- end }}
      {{- if .passwordKey }}
      - key: {{ .passwordKey | quote }}
        path: password
      {{- end }}
      {{- if .tokenKey }}
      - key: {{ .tokenKey | quote }}
        path: token
      {{- end }}
{{- end }}
{{- end }}
{{- with $v.tls }}
{{- if .enabled }}
- name: reconciler-tls
  secret:
    secretName: {{ .existingSecret | quote }}
    defaultMode: {{ .defaultMode }}
    items:
      {{- if .certKey }}
      - key: {{ .certKey | quote }}
        path: tls.crt
      - key: {{ .keyKey | quote }}
        path: tls.key
      {{- end }}
      {{- if .caKey }}
      - key: {{ .caKey | quote }}
        path: ca.crt
      {{- end }}
{{- end }}
{{- end }}
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Sidecar API, for charts that run the reconciler inside their own pod. Pass this
chart's scope, as seen from the parent through .Subcharts (the key is the
dependency's name, or its alias):

  containers:
    - name: my-app
      ...
    {{- include "jetstream-reconciler.sidecar.containers" (index .Subcharts "jetstream-reconciler") | nindent 4 }}
  volumes:
    {{- include "jetstream-reconciler.sidecar.volumes" (index .Subcharts "jetstream-reconciler") | nindent 4 }}

Both render YAML list items. The containers are the reconciler (talking to
nats.sidecarUrl, nats://127.0.0.1:4222 by default) and, with gitSync.enabled,
git-sync. Set deployment.enabled: false in the subchart's values so that it
renders only the manifests ConfigMap.
*/}}
{{- define "jetstream-reconciler.sidecar.containers" -}}
- {{ include "jetstream-reconciler.container" (dict "ctx" . "sidecar" true) | nindent 2 | trim }}
{{- if .Values.gitSync.enabled }}
- {{ include "jetstream-reconciler.gitSync.container" . | nindent 2 | trim }}
{{- end }}
{{- end -}}

{{- define "jetstream-reconciler.sidecar.volumes" -}}
{{- include "jetstream-reconciler.volumes" . | trim -}}
{{- end -}}

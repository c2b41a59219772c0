{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "piggy-webhooks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's namespaced objects. A release name that already contains the chart name
is used as it is.
*/}}
{{- define "piggy-webhooks.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding, MutatingWebhookConfiguration): the
full name plus the release namespace, so that two releases in different namespaces do not clash.
*/}}
{{- define "piggy-webhooks.clusterName" -}}
{{- printf "%s-%s" (include "piggy-webhooks.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "piggy-webhooks.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "piggy-webhooks.labels" -}}
helm.sh/chart: {{ include "piggy-webhooks.chart" . }}
{{ include "piggy-webhooks.selectorLabels" . }}
app.kubernetes.io/component: webhook
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: identical to Go Piggy's chart, because a Deployment selector cannot change on upgrade.
*/}}
{{- define "piggy-webhooks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "piggy-webhooks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "piggy-webhooks.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "piggy-webhooks.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding tls.crt, tls.key and ca.crt (all three certificate modes). */}}
{{- define "piggy-webhooks.tlsSecretName" -}}
{{- printf "%s-webhook-tls" (include "piggy-webhooks.fullname" .) }}
{{- end }}

{{/* ConfigMap publishing the CA (ca.crt) that verifies the webhook. */}}
{{- define "piggy-webhooks.caConfigMapName" -}}
{{- printf "%s-ca-bundle" (include "piggy-webhooks.fullname" .) }}
{{- end }}

{{- define "piggy-webhooks.selfSignedIssuerName" -}}
{{- printf "%s-selfsign" (include "piggy-webhooks.fullname" .) }}
{{- end }}

{{- define "piggy-webhooks.caName" -}}
{{- printf "%s-ca" (include "piggy-webhooks.fullname" .) }}
{{- end }}

{{/* Service DNS name the API server calls: <fullname>.<namespace>.svc */}}
{{- define "piggy-webhooks.serviceHost" -}}
{{- printf "%s.%s.svc" (include "piggy-webhooks.fullname" .) .Release.Namespace }}
{{- end }}

{{/* DNS names of the serving certificate. */}}
{{- define "piggy-webhooks.dnsNames" -}}
{{- $fullname := include "piggy-webhooks.fullname" . }}
{{- $host := include "piggy-webhooks.serviceHost" . }}
{{- list $fullname (printf "%s.%s" $fullname .Release.Namespace) $host (printf "%s.%s" $host .Values.clusterDomain) | toJson }}
{{- end }}

{{/* URL of the secret proxy for piggysec.com/piggy-address. */}}
{{- define "piggy-webhooks.piggyAddress" -}}
{{- $url := printf "https://%s.%s" (include "piggy-webhooks.serviceHost" .) .Values.clusterDomain }}
{{- if eq (int .Values.service.port) 443 }}
{{- $url }}
{{- else }}
{{- printf "%s:%d" $url (int .Values.service.port) }}
{{- end }}
{{- end }}

{{- define "piggy-webhooks.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{- define "piggy-webhooks.envImage" -}}
{{- printf "%s:%s" .Values.mutate.image.repository (.Values.mutate.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* Certificate mode: certManager, generate or provided. */}}
{{- define "piggy-webhooks.certMode" -}}
{{- if .Values.mutate.certificate.certManager.enabled }}certManager
{{- else if .Values.mutate.certificate.generate }}generate
{{- else }}provided
{{- end }}
{{- end }}

{{/*
Accepts base64 of a PEM (Go Piggy's format) or the PEM itself and returns the PEM.
*/}}
{{- define "piggy-webhooks.pem" -}}
{{- $value := . | toString | trim }}
{{- if hasPrefix "-----BEGIN" $value }}
{{- $value }}
{{- else }}
{{- b64dec $value }}
{{- end }}
{{- end }}

{{/*
Computes the TLS material once per render and stores it on the root context, so the Secret, the
webhook caBundle, the CA ConfigMap and the Deployment checksum all use the same certificate.
Modes "generate" and "provided" only; cert-manager material is unknown at render time.

generate: an existing Secret found with lookup (helm install/upgrade against a cluster) is reused,
so the CA and certificate survive upgrades; `helm template` and --dry-run=client cannot see the
cluster and generate a new pair on every render.
*/}}
{{- define "piggy-webhooks.tls" -}}
{{- if not (hasKey .Release "piggyTls") }}
{{- $mode := include "piggy-webhooks.certMode" . }}
{{- $tls := dict "crt" "" "key" "" "ca" "" "type" "kubernetes.io/tls" "reused" false }}
{{- if eq $mode "generate" }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "piggy-webhooks.tlsSecretName" .) }}
{{- $data := dig "data" dict $existing }}
{{- if and (index $data "tls.crt") (index $data "tls.key") (index $data "ca.crt") }}
{{- $_ := set $tls "crt" (index $data "tls.crt" | b64dec) }}
{{- $_ := set $tls "key" (index $data "tls.key" | b64dec) }}
{{- $_ := set $tls "ca" (index $data "ca.crt" | b64dec) }}
{{- /* The type of a Secret is immutable: keep Go Piggy's Opaque Secret on upgrade. */}}
{{- $_ := set $tls "type" ($existing.type | default "kubernetes.io/tls") }}
{{- $_ := set $tls "reused" true }}
{{- else }}
{{- $validity := int .Values.mutate.certificate.certValidity }}
{{- /* ECDSA P-256 keys (Helm's genCA would make RSA-2048): a TLS handshake with the webhook costs
its server ~40 % less CPU and piggy-env ~0.7 ms less wait (see the chart README). */}}
{{- $ca := genCAWithKey (include "piggy-webhooks.caName" .) (mul $validity 10 | int) (genPrivateKey "ecdsa") }}
{{- $host := include "piggy-webhooks.serviceHost" . }}
{{- $cert := genSignedCertWithKey $host nil (include "piggy-webhooks.dnsNames" . | fromJsonArray) $validity $ca (genPrivateKey "ecdsa") }}
{{- $_ := set $tls "crt" $cert.Cert }}
{{- $_ := set $tls "key" $cert.Key }}
{{- $_ := set $tls "ca" $ca.Cert }}
{{- end }}
{{- else if eq $mode "provided" }}
{{- $c := .Values.mutate.certificate }}
{{- $msg := "is required when mutate.certificate.generate and mutate.certificate.certManager.enabled are false" }}
{{- $_ := set $tls "crt" (include "piggy-webhooks.pem" (required (printf "mutate.certificate.tls.crt %s" $msg) (dig "tls" "crt" "" $c))) }}
{{- $_ := set $tls "key" (include "piggy-webhooks.pem" (required (printf "mutate.certificate.tls.key %s" $msg) (dig "tls" "key" "" $c))) }}
{{- $_ := set $tls "ca" (include "piggy-webhooks.pem" (required (printf "mutate.certificate.ca.crt %s" $msg) (dig "ca" "crt" "" $c))) }}
{{- end }}
{{- $_ := set .Release "piggyTls" $tls }}
{{- end }}
{{- end }}

{{/*
The admission seal, computed once per render and stored on the root context: the Secret name, and
for the chart-managed Secret its key, previous key and legacy cutoff. An existing chart-managed
Secret found with lookup is reused as it is (key, previous key and cutoff), so `helm upgrade`
keeps them; `helm template` cannot look it up and makes a new key and cutoff on every render (use
seal.existingSecret there). The cutoff of a new Secret is now plus 15 minutes: pods created while
the upgrade rolls out are still admitted by the old webhook.
*/}}
{{- define "piggy-webhooks.seal" -}}
{{- if not (hasKey .Release "piggySeal") }}
{{- $seal := dict "secretName" .Values.seal.existingSecret "managed" false "key" "" "previousKey" "" "createdBefore" "" }}
{{- if not .Values.seal.existingSecret }}
{{- $name := printf "%s-seal" (include "piggy-webhooks.fullname" .) }}
{{- $_ := set $seal "secretName" $name }}
{{- $_ := set $seal "managed" true }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $data := dig "data" dict $existing }}
{{- if index $data "key" }}
{{- $_ := set $seal "key" (index $data "key" | b64dec) }}
{{- $_ := set $seal "previousKey" ((index $data "previous-key") | default "" | b64dec) }}
{{- $_ := set $seal "createdBefore" (dig "metadata" "annotations" "piggysec.com/legacy-pods-created-before" "" $existing) }}
{{- else }}
{{- $_ := set $seal "key" (randAlphaNum 64) }}
{{- end }}
{{- if not $seal.createdBefore }}
{{- $_ := set $seal "createdBefore" (dateInZone "2006-01-02T15:04:05Z" (now | dateModify "+15m") "UTC") }}
{{- end }}
{{- end }}
{{- if .Values.legacyPods.createdBefore }}
{{- $_ := set $seal "createdBefore" .Values.legacyPods.createdBefore }}
{{- else if and .Values.legacyPods.enabled (not $seal.managed) }}
{{- fail "legacyPods.createdBefore is required with seal.existingSecret while legacyPods.enabled is true: set the time this release was first installed (RFC 3339)" }}
{{- end }}
{{- $_ := set .Release "piggySeal" $seal }}
{{- end }}
{{- end }}

{{/* Environment of the webhook container as a name → value dict. */}}
{{/* The webhook's timeoutSeconds: mutate.timeoutSeconds, where false or null mean 5. */}}
{{- define "piggy-webhooks.timeoutSeconds" -}}
{{- $timeout := 5 }}
{{- $t := .Values.mutate.timeoutSeconds }}
{{- if and (not (kindIs "bool" $t)) (not (kindIs "invalid" $t)) }}
{{- $timeout = int $t }}
{{- end }}
{{- $timeout }}
{{- end }}

{{- define "piggy-webhooks.env" -}}
{{- $env := dict }}
{{- $_ := set $env "DEBUG" (.Values.debug | default false | toString) }}
{{- $_ := set $env "PIGGY_ENV_IMAGE" (include "piggy-webhooks.envImage" .) }}
{{- $_ := set $env "PIGGY_ENV_IMAGE_PULL_POLICY" .Values.mutate.image.pullPolicy }}
{{- if .Values.mutate.defaultPiggyAddress }}
{{- $_ := set $env "PIGGY_ADDRESS" (include "piggy-webhooks.piggyAddress" .) }}
{{- end }}
{{- $_ := set $env "PIGGY_ALLOWED_ADDRESSES" (prepend (.Values.mutate.allowedAddresses | default list) (include "piggy-webhooks.piggyAddress" .) | uniq | join ",") }}
{{- with .Values.aws.sessionRoleArn }}
{{- $_ := set $env "PIGGY_AWS_SESSION_ROLE_ARN" . }}
{{- end }}
{{- range $key, $value := .Values.env }}
{{- $_ := set $env (upper $key) (ternary "" (toString $value) (kindIs "invalid" $value)) }}
{{- end }}
{{- /* Managed by the chart: the certificate volume and the container port. */}}
{{- $_ := set $env "TLS_CERT_FILE" "/certs/tls.crt" }}
{{- $_ := set $env "TLS_PRIVATE_KEY_FILE" "/certs/tls.key" }}
{{- $_ := set $env "PIGGY_CA_BUNDLE_FILE" "/certs/ca.crt" }}
{{- $_ := set $env "LISTEN_ADDRESS" (printf ":%d" (int .Values.port)) }}
{{- /* The admission deadline stays below the API server's timeoutSeconds: Piggy's denial arrives. */}}
{{- $timeout := include "piggy-webhooks.timeoutSeconds" . | int }}
{{- $_ := set $env "PIGGY_ADMISSION_TIMEOUT" (ternary "800ms" (printf "%ds" (sub $timeout 1)) (eq $timeout 1)) }}
{{- include "piggy-webhooks.seal" . }}
{{- $_ := set $env "PIGGY_SEAL_KEY_FILES" "/etc/piggy/seal/key,/etc/piggy/seal/previous-key" }}
{{- $_ := set $env "PIGGY_LEGACY_PODS" (.Values.legacyPods.enabled | toString) }}
{{- if .Values.legacyPods.enabled }}
{{- $_ := set $env "PIGGY_LEGACY_PODS_CREATED_BEFORE" .Release.piggySeal.createdBefore }}
{{- end }}
{{- toJson $env }}
{{- end }}

{{/*
extraEnv entries after the chart's own variables. A name the chart sets (the env dict, including
the certificate paths and LISTEN_ADDRESS) is refused: Kubernetes would keep the last duplicate and
silently change what the webhook reads. Use `env` to override the overridable ones.
*/}}
{{- define "piggy-webhooks.extraEnv" -}}
{{- $env := include "piggy-webhooks.env" . | fromJson }}
{{- $seen := dict }}
{{- range .Values.extraEnv }}
{{- if hasKey $env .name }}
{{- fail (printf "extraEnv: %q is set by the chart; set it with env (or leave it to the chart)" .name) }}
{{- end }}
{{- if hasKey $seen .name }}
{{- fail (printf "extraEnv: %q is listed twice" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- end }}
{{- with .Values.extraEnv }}
{{- toYaml . }}
{{- end }}
{{- end }}

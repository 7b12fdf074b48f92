{{/* Chart name. */}}
{{- define "tsi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix, at most 40 characters so that suffixes fit in 63. */}}
{{- define "tsi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every resource; call with (dict "ctx" $ "component" "issuer"). */}}
{{- define "tsi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "tsi.selectorLabels" . }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tsi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tsi.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The tsi image reference. */}}
{{- define "tsi.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Container securityContext of the restricted Pod Security Standard. */}}
{{- define "tsi.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tsi.vaultService" -}}
{{ include "tsi.fullname" . }}-vault
{{- end -}}

{{- define "tsi.vaultAddr" -}}
{{ printf "https://%s.%s.svc:%d" (include "tsi.vaultService" .) .Release.Namespace (int .Values.vault.port) }}
{{- end -}}

{{- define "tsi.nodeCertSecret" -}}
{{ default (printf "%s-node-certs" (include "tsi.fullname" .)) .Values.issuer.enrollment.secretName }}
{{- end -}}

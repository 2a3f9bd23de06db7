{{/*
Names are those of the plain manifests in deploy/ (the operator's code and the docs use them), not
derived from the release name: one release of this chart per namespace.
*/}}

{{- define "recluster.operatorName" -}}
redis-enterprise-operator
{{- end }}

{{/* chart name and version, as the helm.sh/chart label wants them */}}
{{- define "recluster.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object: the contract label app: redis-enterprise (as in deploy/) and the standard
ones.
*/}}
{{- define "recluster.labels" -}}
app: redis-enterprise
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "recluster.chart" . }}
{{- end }}

{{/*
The operator's selector: name: redis-enterprise-operator only, as in deploy/operator.yaml (a
Deployment's selector cannot change, and the Service admission selects the pod by it).
*/}}
{{- define "recluster.selectorLabels" -}}
name: {{ include "recluster.operatorName" . }}
{{- end }}

{{/* Labels of the operator's Deployment and pod */}}
{{- define "recluster.operatorLabels" -}}
{{ include "recluster.labels" . }}
{{ include "recluster.selectorLabels" . }}
{{- end }}

{{- define "recluster.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The namespaces the operator watches, comma-joined: watchNamespaces as given, or the release
namespace when it is empty.
*/}}
{{- define "recluster.watchedNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- join "," .Values.watchNamespaces }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
The namespaces that get the operator's Role and RoleBinding, comma-joined: the release namespace
(the Lease and events) first, then every watched one.
*/}}
{{- define "recluster.roleNamespaces" -}}
{{- prepend (.Values.watchNamespaces | default list) .Release.Namespace | uniq | join "," }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate (secret and certManager modes) */}}
{{- define "recluster.webhookSecretName" -}}
{{- if eq .Values.webhook.certificate.mode "secret" }}
{{- required "webhook.certificate.secretName is required when webhook.certificate.mode is secret: the name of a Secret with tls.crt, tls.key and ca.crt" .Values.webhook.certificate.secretName }}
{{- else }}
{{- .Values.webhook.certificate.secretName | default (printf "%s-tls" (include "recluster.certificateName" .)) }}
{{- end }}
{{- end }}

{{/* cert-manager objects (certManager mode) */}}
{{- define "recluster.certificateName" -}}
{{- printf "%s-admission" (include "recluster.operatorName" .) }}
{{- end }}

{{- define "recluster.issuerName" -}}
{{- printf "%s-selfsigned" (include "recluster.operatorName" .) }}
{{- end }}

{{/*
The ClusterRole and ClusterRoleBinding letting the operator keep the webhook configuration's caBundle
current (operator mode). Cluster-scoped, so named after the webhook configuration:
redis-enterprise-admission (the default) gives redis-enterprise-operator-admission, as in
deploy/admission/role.yaml.
*/}}
{{- define "recluster.admissionClusterRoleName" -}}
{{- printf "%s-%s" (include "recluster.operatorName" .) (trimPrefix "redis-enterprise-" .Values.webhook.name) | trunc 253 }}
{{- end }}

{{/* The webhook's Service and where the operator reads a mounted certificate */}}
{{- define "recluster.admissionServiceName" -}}
admission
{{- end }}

{{- define "recluster.webhookCertDir" -}}
/etc/recluster/webhook
{{- end }}

{{/* The operator's metrics Service, and the label a ServiceMonitor selects it by (as in deploy/) */}}
{{- define "recluster.metricsServiceName" -}}
{{- printf "%s-metrics" (include "recluster.operatorName" .) }}
{{- end }}

{{- define "recluster.metricsSelectorLabels" -}}
name: {{ include "recluster.metricsServiceName" . }}
{{- end }}

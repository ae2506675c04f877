{{/* Chart name, truncated to 63 characters (a label value limit). */}}
{{- define "modelfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name; the release name alone when it already contains the chart name. */}}
{{- define "modelfleet.fullname" -}}
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

{{- define "modelfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "modelfleet.labels" -}}
helm.sh/chart: {{ include "modelfleet.chart" . }}
{{ include "modelfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: modelfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "modelfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelfleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Settings the chart refuses up front, with a message that names the value to change.
Included from the Deployment so that every install and upgrade runs it.
*/}}
{{- define "modelfleet.validate" -}}
{{- if and (eq .Values.metrics.mode "prometheus") (not .Values.prometheus.url) }}
{{- fail "metrics.mode=prometheus needs prometheus.url (for example http://prometheus-operated.monitoring.svc:9090); or set metrics.mode=scrape to read vLLM pods directly" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not (include "modelfleet.modelNamespaces" . | trim)) }}
{{- fail "networkPolicy.enabled needs the namespaces of the model pods: set networkPolicy.namespaces or watchNamespaces" }}
{{- end }}
{{- end }}

{{/* Namespaces that hold model pods, for per-namespace objects (NetworkPolicy), one per line. */}}
{{- define "modelfleet.modelNamespaces" -}}
{{- range (default .Values.watchNamespaces .Values.networkPolicy.namespaces | uniq) }}
{{ . }}
{{- end }}
{{- end }}

{{/* Selector for the vLLM pods the operator creates: every one carries this label. */}}
{{- define "modelfleet.modelPodSelector" -}}
matchExpressions:
  - key: modelfleet.io/deployment
    operator: Exists
{{- end }}

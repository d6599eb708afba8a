{{/* Names and labels shared by every object of a release. */}}
{{- define "upstream-exporter.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: the job label Prometheus takes (app.kubernetes.io/name) stays "upstream-exporter", what the dashboard and alerts select. */}}
{{- define "upstream-exporter.selectorLabels" -}}
app.kubernetes.io/name: upstream-exporter
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: exporter
{{- end -}}

{{- define "upstream-exporter.labels" -}}
{{ include "upstream-exporter.selectorLabels" . }}
app.kubernetes.io/part-of: upstream-exporter
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "upstream-exporter.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "upstream-exporter.configMapName" -}}
{{- .Values.existingConfigMap | default (printf "%s-config" (include "upstream-exporter.name" .)) -}}
{{- end -}}

{{/* Every object's checkov skip for the namespace check (skip1; a template adds its own from skip2). */}}
{{- define "upstream-exporter.namespaceSkip" -}}
checkov.io/skip1: CKV_K8S_21=The chart installs into the release's namespace (helm --namespace)
{{- end -}}

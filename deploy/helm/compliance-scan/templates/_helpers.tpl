{{/* The chart's name, or nameOverride. */}}
{{- define "compliance-scan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Names of the release's objects: the release name when it already says compliance-scan. */}}
{{- define "compliance-scan.fullname" -}}
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

{{- define "compliance-scan.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "compliance-scan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ugallu
{{- end }}

{{- define "compliance-scan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "compliance-scan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The Falco receiver's selector-less Service (its EndpointSlice is the leader's). */}}
{{- define "compliance-scan.falcoReceiverService" -}}
{{- .Values.falco.receiver.service.name | default (printf "%s-falco" (include "compliance-scan.fullname" .)) }}
{{- end }}

{{- define "compliance-scan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "compliance-scan.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The port of a bind address (":8080", "0.0.0.0:8080", "[::]:8080"); empty for "0" (off). */}}
{{- define "compliance-scan.port" -}}
{{- if ne (toString .) "0" }}{{ regexFind "[0-9]+$" (toString .) }}{{ end }}
{{- end }}

{{/* The operator's image: repository@digest when a digest is set, else repository:tag. */}}
{{- define "compliance-scan.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

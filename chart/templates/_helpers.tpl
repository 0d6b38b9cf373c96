{{/*
Name of the chart, or nameOverride.
*/}}
{{- define "open-ahrefs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name: fullnameOverride, or "<release>-<chart>", or the release
name alone when it already contains the chart name. Truncated to 63 characters, the
limit of a DNS label.
*/}}
{{- define "open-ahrefs.fullname" -}}
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
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "open-ahrefs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "open-ahrefs.labels" -}}
helm.sh/chart: {{ include "open-ahrefs.chart" . }}
{{ include "open-ahrefs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that Services and Deployments select pods by; add the component label next to it.
*/}}
{{- define "open-ahrefs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "open-ahrefs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount of the admin and scraper pods.
*/}}
{{- define "open-ahrefs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "open-ahrefs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The open-ahrefs image reference.
*/}}
{{- define "open-ahrefs.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Name of the Strimzi Kafka resource.
*/}}
{{- define "open-ahrefs.kafkaName" -}}
{{- default (printf "%s-kafka" (include "open-ahrefs.fullname" .)) .Values.kafka.name | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/*
KAFKA_BROKERS: the bootstrap Service that Strimzi creates for the plain listener, or
kafka.brokers.
*/}}
{{- define "open-ahrefs.kafkaBrokers" -}}
{{- if .Values.kafka.create }}
{{- printf "%s-kafka-bootstrap:9092" (include "open-ahrefs.kafkaName" .) }}
{{- else }}
{{- required "kafka.brokers is required when kafka.create is false" .Values.kafka.brokers }}
{{- end }}
{{- end }}

{{/*
KAFKA_TOPIC_REPLICATION: the KafkaTopic replicas when the chart creates Kafka, so that a
process that creates a missing topic makes it like the operator would.
*/}}
{{- define "open-ahrefs.topicReplication" -}}
{{- if .Values.kafka.create }}
{{- .Values.kafka.topics.replicas }}
{{- else }}
{{- .Values.config.topicReplication }}
{{- end }}
{{- end }}

{{/*
Name of the CloudNativePG Cluster resource.
*/}}
{{- define "open-ahrefs.postgresName" -}}
{{- printf "%s-pg" (include "open-ahrefs.fullname" .) | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the Secret that the chart creates for postgresql.url.
*/}}
{{- define "open-ahrefs.databaseSecretName" -}}
{{- printf "%s-database" (include "open-ahrefs.fullname" .) }}
{{- end }}

{{/*
The secretKeyRef of DATABASE_URL, from the first source that is set: the CloudNativePG
app secret (postgresql.create), postgresql.existingSecret.name, or the Secret
"<fullname>-database", which the chart creates from postgresql.url or, without it, the
user creates before installing.
*/}}
{{- define "open-ahrefs.databaseUrlRef" -}}
{{- if .Values.postgresql.create }}
name: {{ include "open-ahrefs.postgresName" . }}-app
key: uri
{{- else if .Values.postgresql.existingSecret.name }}
name: {{ .Values.postgresql.existingSecret.name }}
key: {{ .Values.postgresql.existingSecret.key }}
{{- else }}
name: {{ include "open-ahrefs.databaseSecretName" . }}
key: DATABASE_URL
{{- end }}
{{- end }}

{{/*
Pod spec fields shared by the admin, scraper and migration pods.
*/}}
{{- define "open-ahrefs.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

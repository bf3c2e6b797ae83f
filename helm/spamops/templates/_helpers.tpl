{{/* Chart name and version label value. */}}
{{- define "spamops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: the release name, with the chart name appended
unless the release name already contains it (helm install spamops ... gives
plain "spamops"); fullnameOverride replaces it. Kubernetes names end at 63
characters.
*/}}
{{- define "spamops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* One object's name: include "spamops.name" (list . "trainer") -> <fullname>-trainer */}}
{{- define "spamops.name" -}}
{{- printf "%s-%s" (include "spamops.fullname" (index . 0)) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Namespace every namespaced object goes into. */}}
{{- define "spamops.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{/*
Common labels. No chart version, release revision or managed-by in them: the
kustomize base is rendered from this chart and Argo CD compares live objects
with git, so labels must not depend on the tool or change on every release.
*/}}
{{- define "spamops.labels" -}}
app.kubernetes.io/name: spamops
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: spamops
{{- end -}}

{{/* Labels of one component: include "spamops.componentLabels" (dict "ctx" . "component" "trainer") */}}
{{- define "spamops.componentLabels" -}}
{{ include "spamops.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "spamops.selectorLabels" -}}
app.kubernetes.io/name: spamops
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Argo CD sync wave annotation. */}}
{{- define "spamops.syncWave" -}}
argocd.argoproj.io/sync-wave: {{ . | quote }}
{{- end -}}

{{/*
Image of one component: <repository>/<component>@<digest> once `make pin` wrote a
digest (deploy by digest, never by a mutable tag), else <repository>/<component>:<tag>.
*/}}
{{- define "spamops.image" -}}
{{- $digest := get (.ctx.Values.image.digests | default dict) .component -}}
{{- if $digest -}}
{{- printf "%s/%s@%s" .ctx.Values.image.repository .component $digest -}}
{{- else -}}
{{- printf "%s/%s:%s" .ctx.Values.image.repository .component .ctx.Values.image.tag -}}
{{- end -}}
{{- end -}}

{{- define "spamops.trainerServiceAccount" -}}{{ include "spamops.name" (list . "trainer") }}{{- end -}}
{{- define "spamops.predictorServiceAccount" -}}{{ include "spamops.name" (list . "predictor") }}{{- end -}}
{{- define "spamops.configMapName" -}}{{ include "spamops.name" (list . "training-config") }}{{- end -}}
{{- define "spamops.cronJobName" -}}{{ include "spamops.name" (list . "retrain") }}{{- end -}}

{{/* "true"/"false" -> "1"/"0" as KServe and boto expect in env and annotations. */}}
{{- define "spamops.bool01" -}}
{{- if . }}1{{ else }}0{{ end -}}
{{- end -}}

{{- define "spamops.s3EndpointURL" -}}
{{- if .Values.s3.useHttps }}https{{ else }}http{{ end }}://{{ .Values.s3.endpoint -}}
{{- end -}}

{{- define "spamops.smokeTestURL" -}}
{{- default (printf "http://%s-predictor.%s.svc.cluster.local" .Values.modelName (include "spamops.namespace" .)) .Values.smokeTest.url -}}
{{- end -}}

{{/* Pod-level security context of every pod: trainer, predictor and smoke test. */}}
{{- define "spamops.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Container security context of every container: include with the root context,
or with (dict "writableRoot" true) for one that writes outside its volumes.
*/}}
{{- define "spamops.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ not .writableRoot }}
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* S3 environment of the trainer: credentials from the Secret, the rest plain. */}}
{{- define "spamops.s3Env" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.secretName }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.secretName }}
      key: AWS_SECRET_ACCESS_KEY
{{- /* One endpoint variable, with its scheme (spamops' S3 store and boto3 read
it first): S3_ENDPOINT/S3_USE_HTTPS would only repeat it. */}}
- name: AWS_ENDPOINT_URL
  value: {{ include "spamops.s3EndpointURL" . | quote }}
- name: S3_VERIFY_SSL
  value: {{ include "spamops.bool01" .Values.s3.verifySsl | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.s3.region | quote }}
{{- end -}}

{{/* Name of the one-off training Job: a hash of its (immutable) spec. */}}
{{- define "spamops.trainJobName" -}}
{{ include "spamops.name" (list . "train") | trunc 54 }}-{{ include "spamops.trainerJobSpec" . | sha256sum | trunc 8 }}
{{- end -}}

{{/*
Job spec of a training run, shared by the Job and the CronJob (no TTL: only
the one-off Job gets one; the CronJob's history limits clean up its runs).
Exit codes of `spamops train`: 0 promoted / nothing to do, 1 anything else
(retried up to backoffLimit), 2 bad input/config and 3 gate refused the model
(both fail the Job at once: retrying cannot help).
*/}}
{{- define "spamops.trainerJobSpec" -}}
backoffLimit: {{ .Values.training.backoffLimit }}
activeDeadlineSeconds: {{ .Values.training.activeDeadlineSeconds }}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: trainer
        operator: In
        values: [2, 3]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
    # Stopped by SIGINT/SIGTERM before the pointer moved (130/143): retried within backoffLimit.
    - action: Count
      onExitCodes:
        containerName: trainer
        operator: In
        values: [130, 143]
template:
  metadata:
    labels:
      {{- include "spamops.selectorLabels" (dict "ctx" . "component" "trainer") | nindent 6 }}
  spec:
    serviceAccountName: {{ include "spamops.trainerServiceAccount" . }}
    # The pipeline patches the InferenceService after promoting: it needs a token.
    automountServiceAccountToken: true
    restartPolicy: Never
    {{- with .Values.imagePullSecrets }}
    imagePullSecrets:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- include "spamops.podSecurityContext" . | nindent 6 }}
    {{- with .Values.training.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.training.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    containers:
      - name: trainer
        image: {{ include "spamops.image" (dict "ctx" . "component" "trainer") }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        command: [spamops, train, --config, /etc/spamops/config.yaml]
        env:
          {{- include "spamops.s3Env" . | nindent 10 }}
          - name: HOME
            value: /tmp
        resources:
          {{- toYaml .Values.training.resources | nindent 10 }}
        securityContext:
          {{- include "spamops.containerSecurityContext" . | nindent 10 }}
        volumeMounts:
          - name: config
            mountPath: /etc/spamops
            readOnly: true
          - name: scratch
            mountPath: /tmp
    volumes:
      - name: config
        configMap:
          name: {{ include "spamops.configMapName" . }}
      - name: scratch
        emptyDir:
          sizeLimit: {{ .Values.training.scratchSizeLimit }}
{{- end -}}

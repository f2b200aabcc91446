{{/* Names, labels and the RBAC rules shared by the cluster and namespaced modes. */}}

{{- define "voxscale.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voxscale.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "voxscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "voxscale.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "voxscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voxscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "voxscale.labels" -}}
{{ include "voxscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "voxscale.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Every API call the operator makes in a watched namespace (voxscale/k8s.py + kopf), and no other.
Server-side apply of an object that does not exist yet is authorized as `create`, so every kind
the operator applies has both `patch` and `create`.
*/}}
{{- define "voxscale.namespacedRules" -}}
# kopf watches SpeechClusters and patches its annotations and finalizer; Kube.read_cluster gets one.
- apiGroups: ["voxscale.io"]
  resources: ["speechclusters"]
  verbs: ["get", "list", "watch", "patch"]
# Kube.patch_status: conditions, per-shard status and the scaler state that survives restarts.
- apiGroups: ["voxscale.io"]
  resources: ["speechclusters/status"]
  verbs: ["get", "patch"]
# Shard workers: Kube.apply / Kube.scale (server-side apply), read_shard, delete_shards_except.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "create", "patch", "delete"]
# Shard Service and model-config ConfigMap: server-side apply, list by label, delete.
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["list", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "create", "patch", "delete"]
# routing.reconcile_routes: the SpeechCluster's one Gateway API route (spec.routing), by
# server-side apply and by name (Kube.delete_object when routing is removed or changes kind).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["grpcroutes", "httproutes"]
  verbs: ["create", "patch", "delete"]
# Kube.read_shard counts ready / warming / pending pods (never watched); before a streaming
# shard's scale-in, Kube.patch_pod sets each pod's controller.kubernetes.io/pod-deletion-cost
# from its live streams, so the ReplicaSet controller removes the idlest.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
# Kube.hpa_targets: an HPA on a shard's Deployment makes voxscale stand back (HPAConflict).
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list"]
# Kube.event and kopf's own event poster both post core/v1 Events.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- with .Values.prometheus.tokenSecretNames }}
# Kube.read_secret_key: the Prometheus bearer token, by name only. An empty resourceNames would
# mean "every Secret", so without names this rule is not rendered at all.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames:
    {{- range . }}
    - {{ . | quote }}
    {{- end }}
  verbs: ["get"]
{{- end }}
{{- end -}}

{{/*
kopf watches CustomResourceDefinitions to notice new or changed resources without a restart;
without it kopf only logs a warning, but the watch is cheap and read-only. Cluster-scoped.
*/}}
{{- define "voxscale.crdRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}

{{/*
Namespaced mode only: kopf lists and watches Namespaces to resolve --namespace before it serves
anything. Without this it retries the forbidden list 9 times (about 55 s, 13 ERROR lines, measured
against kube-apiserver 1.33) before falling back to the names as given. Names and labels only.
*/}}
{{- define "voxscale.namespaceRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end -}}

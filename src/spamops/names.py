"""Every name that crosses a boundary between spamops' parts, spelled once.

A metric the predictor exports is queried by the rollout analysis, the shadow gate, the drift
monitor and the alert rules; an environment variable the chart (or ``rollout``) sets is read
by the predictor or the monitor; an annotation one run writes is read by the next.  Each of
those names is a constant here, imported by both sides, and a test checks that every
``spamops_*`` metric the alert rules (helm/spamops/files/prometheus-rules.yaml and its promtool
tests), the default queries and the docs name is one of :data:`METRICS`.

Metric constants are the names as exposed: counters end in ``_total`` (prometheus_client
strips and re-adds it), histograms are the family name (series ``_bucket``/``_sum``/``_count``).
The store's key layout is not here: the registry owns it (spamops.registry.versions).
"""

from __future__ import annotations

# -- metrics the predictor exports (spamops.serving.metrics, docs/serving.md) ---------------------------
PREDICTIONS_TOTAL = "spamops_predictions_total"  # {label, model_version}
SPAM_PROBABILITY = "spamops_spam_probability"  # histogram {model_version}
INPUT_LENGTH = "spamops_input_length_characters"  # histogram {model_version}; the drift monitor's "length"
INPUT_PUNCT = "spamops_input_punctuation_marks"  # histogram {model_version}; the drift monitor's "punct"
INVALID_REQUESTS_TOTAL = "spamops_invalid_requests_total"  # {reason}
INFERENCE_RESPONSES_TOTAL = "spamops_inference_responses_total"  # {code}
TABLE_FALLBACKS_TOTAL = "spamops_table_fallbacks_total"  # {model_version}
MODEL_READY = "spamops_model_ready"  # {model_name}
MODEL_INFO = "spamops_model_info"  # {model_name, model_version, feature_spec}: 1 served, 0 artifact refused
PREDICT_LATENCY = "spamops_predict_latency_seconds"  # histogram {model_version}, per request, sub-millisecond
MODEL_LOAD_FAILURES_TOTAL = "spamops_model_load_failures_total"  # {model_name, reason}

# ... its inference log writer (spamops.serving.inference_log)
INFERENCE_LOG_PREDICTIONS_TOTAL = "spamops_inference_log_predictions_total"  # {model_version}
INFERENCE_LOG_DROPPED_TOTAL = "spamops_inference_log_dropped_total"
INFERENCE_LOG_BATCHES_TOTAL = "spamops_inference_log_batches_total"
INFERENCE_LOG_WRITE_FAILURES_TOTAL = "spamops_inference_log_write_failures_total"

# ... and its shadow scorer (spamops.serving.shadow), read by the shadow gate (spamops.deploy.shadow)
SHADOW_PREFIX = "spamops_shadow_"
SHADOW_READY = "spamops_shadow_ready"  # {model_name}
SHADOW_LOAD_FAILURES_TOTAL = "spamops_shadow_load_failures_total"  # {model_name, reason}
SHADOW_REQUESTS_TOTAL = "spamops_shadow_requests_total"  # the rest: {model_version, shadow_version, ...}
SHADOW_COMPARED_TOTAL = "spamops_shadow_compared_total"
SHADOW_AGREEMENTS_TOTAL = "spamops_shadow_agreements_total"
SHADOW_DISAGREEMENTS_TOTAL = "spamops_shadow_disagreements_total"  # {direction}
SHADOW_SPAM_TOTAL = "spamops_shadow_spam_total"  # {side}
SHADOW_DROPPED_TOTAL = "spamops_shadow_dropped_total"
SHADOW_FAILED_TOTAL = "spamops_shadow_failed_total"
SHADOW_AGREEMENT_RATIO = "spamops_shadow_agreement_ratio"
SHADOW_SPAM_RATE = "spamops_shadow_spam_rate"  # {side}
SHADOW_QUEUE_DEPTH = "spamops_shadow_queue_depth"
SHADOW_QUEUE_CAPACITY = "spamops_shadow_queue_capacity"

# -- metrics the monitor exports (spamops.monitoring, docs/monitoring.md), read by the alert rules ------
FEATURE_DRIFT_PSI = "spamops_feature_drift_psi"  # {feature, model_version}
FEATURE_DRIFT_KS = "spamops_feature_drift_ks"
FEATURE_DRIFT_WASSERSTEIN_NORMED = "spamops_feature_drift_wasserstein_normed"
FEATURE_DRIFT_SAMPLES = "spamops_feature_drift_samples"
PREDICTED_SPAM_RATE = "spamops_predicted_spam_rate"  # {model_version}
REFERENCE_SPAM_RATE = "spamops_reference_spam_rate"  # {model_version}
MONITOR_LAST_SUCCESS = "spamops_monitor_last_success_timestamp_seconds"
MONITOR_FAILED_PASSES_TOTAL = "spamops_monitor_failed_passes_total"
QUALITY_ACCURACY = "spamops_quality_accuracy"  # {model_version}
QUALITY_SPAM_RECALL = "spamops_quality_spam_recall"
QUALITY_SPAM_F1 = "spamops_quality_spam_f1"
QUALITY_LABELLED_PREDICTIONS = "spamops_quality_labelled_predictions"
QUALITY_LOGGED_PREDICTIONS = "spamops_quality_logged_predictions"
LABEL_DELAY_SECONDS = "spamops_label_delay_seconds"  # {model_version, quantile}
INFERENCE_LOG_BAD_LINES = "spamops_inference_log_bad_lines"
MONITOR_FAILED_QUALITY_PASSES_TOTAL = "spamops_monitor_failed_quality_passes_total"
ROLLOUT_DECISIONS_TOTAL = "spamops_rollout_decisions_total"  # {model_version, action}
MONITOR_FAILED_ROLLOUT_PASSES_TOTAL = "spamops_monitor_failed_rollout_passes_total"

# -- what the tests' traffic driver (a stand-in data plane) exports; no product default reads it (docs/rollout.md)
GATEWAY_REQUESTS_TOTAL = "spamops_gateway_requests_total"  # {model_version, code}

METRICS: frozenset[str] = frozenset(
    value for key, value in dict(globals()).items() if key.isupper() and value.startswith("spamops_")
) - {SHADOW_PREFIX}
"""Every ``spamops_*`` metric family a part of spamops exports or queries."""

# -- metric label names ------------------------------------------------------------------------------
LABEL_MODEL_VERSION = "model_version"  # tells the sides of a rollout apart
LABEL_MODEL_NAME = "model_name"
LABEL_SHADOW_VERSION = "shadow_version"
LABEL_CLASS = "label"  # ham / spam (spamops.features.LABELS)
LABEL_FEATURE = "feature"
LABEL_ACTION = "action"
LABEL_SIDE = "side"
LABEL_DIRECTION = "direction"

# -- environment variables set by the chart or a rollout, read by the predictor or the monitor --------
STORAGE_URI_ENV = "STORAGE_URI"  # KServe's: where the storage initializer pulled the served version from
SHADOW_STORAGE_URI_ENV = "SHADOW_STORAGE_URI"  # the shadow version (rollout shadow / render isvc --shadow)
INFERENCE_LOG_URI_ENV = "SPAMOPS_INFERENCE_LOG_URI"  # the predictor writes, the monitor and training read
INFERENCE_LOG_BATCH_EVENTS_ENV = "SPAMOPS_INFERENCE_LOG_BATCH_EVENTS"
INFERENCE_LOG_FLUSH_SECONDS_ENV = "SPAMOPS_INFERENCE_LOG_FLUSH_SECONDS"
INFERENCE_LOG_QUEUE_REQUESTS_ENV = "SPAMOPS_INFERENCE_LOG_QUEUE_REQUESTS"
FEEDBACK_URI_ENV = "SPAMOPS_FEEDBACK_URI"
INFERENCE_SERVICE_ENV = "SPAMOPS_INFERENCE_SERVICE"  # the inference log's event attributes
ENDPOINT_ENV = "SPAMOPS_ENDPOINT"
POD_NAMESPACE_ENV = "POD_NAMESPACE"

ENV_NAMES: frozenset[str] = frozenset(
    value for key, value in dict(globals()).items() if key.endswith("_ENV") and isinstance(value, str)
)
"""Every environment variable the chart or a rollout sets for spamops to read."""

# -- Kubernetes annotation and label keys -------------------------------------------------------------
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"  # Serverless or Standard: picks the traffic backend
INFERENCE_SERVICE_LABEL = "serving.kserve.io/inferenceservice"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
LAST_TRIGGERED_ANNOTATION = "spamops.dev/last-triggered-at"  # the retrain CronJob's cooldown claim
TRIGGER_LABEL = "spamops.dev/trigger"  # on a triggered Job: what started it
TRIGGER_REASON_ANNOTATION = "spamops.dev/trigger-reason"

# -- HTTP -------------------------------------------------------------------------------------------
REQUEST_ID_HEADER = "x-request-id"  # the prediction id clients send feedback labels for

"""Run configuration: YAML validated on load.

Every default lives in the models below and nowhere else; ``spamops config
defaults`` prints them as YAML, and ``--markdown`` prints the README's settings
table from the same models (a test keeps the README in step).

A renamed setting gets an entry in :data:`RENAMED_SETTINGS`: a config file may use the
old name, with a warning naming the file and the new name, until the release the entry
names; the model cards that embed a configuration keep reading it with the same table
(docs/model-card.md, "Versions of a record").
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from spamops import __version__, names
from spamops.errors import BadInputError

DEFAULT_STORE_URI = "./.spamops/store"
DEFAULT_MODEL_NAME = "spam"
DEFAULT_GC_OLDER_THAN = "1h"  # `spamops models gc --older-than`: nothing younger is touched


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelledLogSource(_Strict):
    """Production's labelled predictions as training rows: the inference log joined with the feedback labels.

    Written in ``data.sources`` as ``{inference_log: URI, feedback: URI}`` next to CSV URIs, so a
    retrain learns from what production saw (docs/monitoring.md, "Concept drift").
    """

    inference_log: str = Field(min_length=1, description="The predictors' inference log (path, file://, s3://).")
    feedback: str = Field(min_length=1, description="Where `spamops monitor feedback` stored the labels.")
    model_version: str | None = Field(None, description="Only predictions of this version; null = every version.")

    @property
    def uri(self) -> str:
        """How reports and the model card name this source."""
        version = f"&model_version={self.model_version}" if self.model_version else ""
        return f"labelled-log:{self.inference_log}?feedback={self.feedback}{version}"


def _source_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "uri"
    return "labelled_log" if isinstance(value, dict | LabelledLogSource) else None


# A string is a CSV URI; a mapping a labelled log (so its errors name its fields, not both kinds').
DataSource = Annotated[
    Annotated[str, Tag("uri")] | Annotated[LabelledLogSource, Tag("labelled_log")],
    Discriminator(
        _source_kind,
        custom_error_type="data_source",
        custom_error_message="must be a CSV path or URI, or a mapping {inference_log: URI, feedback: URI}",
    ),
]


def source_uri(source: DataSource) -> str:
    """A source's name in reports and records: the URI, or the labelled log's ``labelled-log:`` form."""
    return source if isinstance(source, str) else source.uri


class DataConfig(_Strict):
    """Where training data comes from and how much bad input is tolerated."""

    sources: list[DataSource] = Field(
        default_factory=list,
        description="CSV paths or URIs, or `{inference_log: URI, feedback: URI}` for production's labelled "
        "predictions, combined in order; empty means the bundled demo sample.",
    )
    max_bad_row_share: float = Field(
        0.01, ge=0.0, le=1.0, description="Stop when more than this share of any one source's rows is invalid."
    )


Weighting = Literal["uniform", "distance"]


def _every_weighting() -> list[Weighting]:
    return ["uniform", "distance"]


class GridConfig(_Strict):
    """The hyper-parameter grid searched for the KNN step."""

    n_neighbors: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: list(range(1, 26, 2)), min_length=1, description="Neighbour counts to try."
    )
    weights: list[Weighting] = Field(
        default_factory=_every_weighting, min_length=1, description="How neighbours' votes count."
    )
    p: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [1, 2], min_length=1, description="Minkowski power: 1 Manhattan, 2 Euclidean."
    )


class TrainConfig(_Strict):
    """Split, cross-validation and search settings; a fixed seed makes runs reproducible."""

    seed: int = Field(42, description="Seeds the split and the folds: same seed and data, same model.")
    test_size: float = Field(0.2, gt=0.0, lt=1.0, description="Held-out share, stratified by label.")
    cv_folds: int = Field(5, ge=2, description="Stratified K-fold splits of the training part.")
    scoring: str = Field("f1", description="A scikit-learn scorer name; 'f1' is F1 of the spam class.")
    grid: GridConfig = Field(default_factory=GridConfig)
    n_jobs: int = Field(1, description="Parallel grid-search workers with the local backend (-1 = all cores).")
    backend: Literal["local", "dask"] = Field(
        "local", description="Where the grid-search fits run: this process (`local`) or a Dask cluster (`dask`)."
    )
    dask_scheduler: str = Field(
        "", description="Dask scheduler address for `backend: dask`; empty means `$DASK_SCHEDULER_ADDRESS`."
    )
    dask_connect_timeout_seconds: float = Field(30.0, gt=0, description="How long to wait for the Dask scheduler.")


GateMetric = Literal["accuracy", "balanced_accuracy", "spam_f1", "spam_recall", "spam_precision", "roc_auc"]


class GateConfig(_Strict):
    """Quality-gate thresholds; README "Quality gate" says why these defaults."""

    min_accuracy: float = Field(0.85, ge=0.0, le=1.0, description="Held-out accuracy floor (the source document's).")
    min_spam_f1: float = Field(0.50, ge=0.0, le=1.0, description="F1 floor for the spam class.")
    min_spam_recall: float = Field(0.50, ge=0.0, le=1.0, description="Share of held-out spam that must be caught.")
    min_baseline_margin: float = Field(0.01, ge=0.0, le=1.0, description="Accuracy must beat always-ham by this much.")
    primary_metric: GateMetric = Field("spam_f1", description="Metric compared with the production champion.")
    champion_tolerance: float = Field(
        0.02, ge=0.0, le=1.0, description="How far the challenger may trail the champion on the primary metric."
    )


SIGNAL_NAMES = Literal["success_rate", "latency", "success_vs_stable", "latency_vs_stable", "spam_rate", "distribution"]
PLACEHOLDERS = ("version",)


def _template_problem(template: str) -> str | None:
    """Why a PromQL selector template is unusable, or ``None`` (checked at load, before anything is routed)."""
    text = fill(template, {name: "x" for name in PLACEHOLDERS}, check=False)
    depth, quote, escaped = 0, "", False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
            if depth < 0:
                return "unbalanced braces: a closing one comes first"
    if quote:
        return "an unterminated string"
    if depth:
        return "unbalanced braces"
    unknown = sorted(set(_PLACEHOLDER.findall(_collapse(template))) - set(PLACEHOLDERS))
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
    if not re.match(r"^\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{.*\})?\s*$", text, re.S):
        return 'must be a series selector (metric{label="value", ...}): the judge counts its raw samples'
    return None


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _collapse(template: str) -> str:
    """Doubled braces (the old ``str.format`` escaping) read as single ones."""
    return template.replace("{{", "{").replace("}}", "}")


def fill(template: str, values: dict[str, str], *, check: bool = True) -> str:
    """A selector template with its ``{placeholder}`` s replaced; PromQL's own braces stay as written."""
    text = _collapse(template)
    if check and (problem := _template_problem(template)):
        raise BadInputError(f"{template!r}: {problem}")
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


SUCCESS_RATE_PRESETS = {
    # The predictor's own answers by status code, joined to its version through spamops_model_info.
    "predictor": (names.INFERENCE_RESPONSES_TOTAL, names.INFERENCE_RESPONSES_TOTAL + '{code=~"5.."}', "instance"),
    # Istio's sidecar on the predictor pod (reporter="destination"); merged metrics share the pod's address.
    "istio": (
        'istio_requests_total{reporter="destination"}',
        'istio_requests_total{reporter="destination",response_code=~"5.."}',
        "instance",
    ),
    # Envoy Gateway with per-endpoint stats (EnvoyProxy telemetry.metrics.enablePerEndpointStats: true).
    "envoy-gateway": ("envoy_cluster_endpoint_rq_total", "envoy_cluster_endpoint_rq_error", "envoy_endpoint_address"),
}


class SuccessRateSource(_Strict):
    """Where the success rate's request counts come from (docs/rollout.md, "Success-rate providers")."""

    provider: Literal["predictor", "istio", "envoy-gateway", "custom"] = Field(
        "predictor",
        description="`predictor` (its own answers; every cluster), `istio`, `envoy-gateway`, or `custom` "
        "(`requests`/`errors` selectors).",
    )
    requests: str | None = Field(
        None, description="custom: series selector of a counter of requests (`{version}` allowed)."
    )
    errors: str | None = Field(None, description="custom: selector of the same counter's failed (5xx) requests.")
    join_label: str | None = Field(
        None,
        description="custom: label holding the pod address joined to `spamops_model_info`'s `instance`; null "
        "when the selectors name the version (`{version}`).",
    )

    @model_validator(mode="after")
    def _complete(self) -> SuccessRateSource:
        if self.provider != "custom":
            if self.requests or self.errors or self.join_label:
                raise ValueError(f"requests/errors/join_label are for provider custom, not {self.provider}")
            return self
        for name in ("requests", "errors"):
            template = getattr(self, name)
            if not template:
                raise ValueError(f"provider custom needs {name} (a PromQL series selector)")
            if problem := _template_problem(template):
                raise ValueError(f"{name} {template!r}: {problem}")
        uses_version = all("{version}" in _collapse(getattr(self, n)) for n in ("requests", "errors"))
        if not uses_version and not self.join_label:
            raise ValueError("custom selectors must either both name {version} or set join_label")
        return self

    def selectors(self) -> tuple[str, str, str | None]:
        """(requests, errors, join label) of the provider in force."""
        if self.provider == "custom":
            return self.requests or "", self.errors or "", self.join_label
        return SUCCESS_RATE_PRESETS[self.provider]


class AnalysisConfig(_Strict):
    """Canary analysis (``spamops rollout auto``); names follow Flagger's where it has one."""

    interval: float = Field(
        60.0,
        ge=1.0,
        description="Seconds between checks; a step is decided no sooner than this after its weight changed "
        "(Flagger `interval`).",
    )
    threshold: int = Field(
        1,
        ge=1,
        description="Checks with a failed absolute floor (success rate, latency ceiling) over the rollout before "
        "abort (Flagger `threshold`); a comparison's sequential rejection aborts at once.",
    )
    step_weights: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=lambda: [10, 25, 50, 100],
        min_length=1,
        description="Canary weights in order; passing at the last one promotes (Flagger `stepWeights`).",
    )
    step_weight: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Instead of step_weights: add this much per step, up to max_weight (Flagger `stepWeight`).",
    )
    max_weight: int = Field(100, ge=1, le=100, description="Last weight when step_weight is set (Flagger `maxWeight`).")
    progress_deadline: float = Field(
        600.0,
        ge=1.0,
        description="Seconds the canary may stay not Ready, counted from its last progress (start, a weight "
        "change, last seen Ready), before abort (Flagger `progressDeadlineSeconds`).",
    )
    min_requests: int = Field(
        20, ge=1, description="Requests a side needs (canary: in the step) before its request signals can pass."
    )
    min_instances: int = Field(
        20, ge=1, description="Scored instances each side needs in the rollout before the model signals can pass."
    )
    alpha: float = Field(
        0.01,
        gt=0.0,
        lt=0.5,
        description="False-abort budget of one rollout: a healthy canary is aborted with at most this probability "
        "(all signals and steps together; docs/rollout.md).",
    )
    min_success_rate: float = Field(0.99, ge=0.0, le=1.0, description="Canary request success rate floor (per step).")
    latency_quantile: float = Field(
        0.99, gt=0.0, lt=1.0, description="The latency quantile the latency signals judge (0.99 = p99)."
    )
    max_latency_seconds: float = Field(
        0.05,
        gt=0.0,
        description="Canary predict latency ceiling at `latency_quantile` (`spamops_predict_latency_seconds`), "
        "per step; the `SpamopsHighPredictLatency` alert's 50 ms.",
    )
    max_latency_ratio: float = Field(
        1.5, ge=1.0, description="Largest allowed canary/stable ratio of the latency quantile."
    )
    spam_rate_tolerance: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Canary minus stable share labelled spam tolerated either way; beyond it, with confidence, aborts "
        "(0: any difference the test can show).",
    )
    probability_shift_tolerance: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Wasserstein distance (probability units) between the spam-probability distributions "
        "beyond which, with confidence, the distribution signal fails or warns.",
    )
    calibration_shift: Literal["warn", "abort"] = Field(
        "warn",
        description="A probability shift that leaves the share labelled spam unchanged: `warn` (recorded) or `abort`.",
    )
    required_signals: list[SIGNAL_NAMES] = Field(
        default_factory=lambda: list(get_args(SIGNAL_NAMES)),
        description="Signals that must pass to advance; one without data holds the step (undecided), naming why. "
        "Others are judged when present and skipped when not.",
    )
    undecided_deadline: float = Field(
        600.0,
        ge=1.0,
        description="Seconds a step may stay undecided (too little data, a signal without series, Prometheus "
        "down) before `on_undecided`.",
    )
    on_undecided: Literal["abort", "pause"] = Field(
        "abort",
        description="At `undecided_deadline`: `abort` (traffic back to stable) or `pause` (hold the weight "
        "for a person: `rollout promote` / `abort`).",
    )
    success_rate: SuccessRateSource = Field(default_factory=lambda: SuccessRateSource())
    shadow_phase: bool = Field(
        False,
        description="`rollout auto VERSION` first shadows the version (no traffic) and starts the canary only if "
        "the shadow gate passes (docs/monitoring.md).",
    )
    shadow_min_compared: int = Field(
        1000,
        ge=1,
        description="Shadow gate: instances compared (all replicas) before a verdict; ~0.7 % standard error at 95 %.",
    )
    shadow_min_agreement: float = Field(
        0.95, ge=0.0, le=1.0, description="Shadow gate: share of compared instances both versions label alike."
    )
    shadow_deadline: float = Field(
        3600.0, ge=1.0, description="Seconds the shadow phase may take to compare enough instances before abort."
    )

    @field_validator("step_weights")
    @classmethod
    def _weights(cls, values: list[int]) -> list[int]:
        if not values or any(not 0 < v <= 100 for v in values) or values != sorted(set(values)):
            raise ValueError("must be increasing weights in 1..100")
        return values

    def refusal(self) -> str | None:
        """Why ``rollout auto`` cannot run these settings (checked when a config file loads, not in records)."""
        if self.weights() == [100]:
            return (
                "rollout.analysis.step_weights: a one-step rollout ([100]) never measures the canary next to "
                "stable; add a smaller first step (e.g. [50, 100]) or use 'spamops rollout switch' for blue/green"
            )
        return None

    def weights(self) -> list[int]:
        """The step weights in force: ``step_weight`` up to ``max_weight`` when set, else ``step_weights``."""
        if self.step_weight is None:
            return list(self.step_weights)
        steps = list(range(self.step_weight, self.max_weight, self.step_weight))
        return [*steps, self.max_weight]


class RolloutConfig(_Strict):
    """Rolling a promoted version out to the KServe InferenceService (README "Rolling out a model")."""

    enabled: bool = Field(False, description="After promotion, start a canary on the InferenceService.")
    inference_service: str = Field("spam", description="InferenceService name.")
    namespace: str = Field("spamops", description="Its namespace.")
    canary_percent: int = Field(10, ge=0, le=100, description="Traffic share `rollout start` gives the new version.")
    prometheus_url: str = Field("http://127.0.0.1:9090", description="Prometheus the analysis queries (HTTP API).")
    lease_seconds: int = Field(
        120, ge=10, description="A rollout's lease expires this long after its last renewal (a killed loop frees it)."
    )
    standard_route: bool = Field(
        True, description="Standard mode: spamops owns a weighted HTTPRoute (off once KServe routes `spec.canary[]`)."
    )
    gateway_name: str = Field("kserve-ingress-gateway", description="Standard mode: the HTTPRoute's parent Gateway.")
    gateway_namespace: str = Field("kserve", description="Its namespace.")
    gitops_dir: str | None = Field(
        None,
        description="GitOps write-back: the git work tree Argo CD renders (`--gitops DIR`); null = patch the cluster.",
    )
    gitops_values_file: str = Field(
        "values-rollout.yaml", description="GitOps: the chart values file, relative to gitops_dir, each step commits."
    )
    gitops_app: str = Field("spamops", description="GitOps: the Argo CD Application named in commit messages.")
    gitops_push: bool = Field(False, description="GitOps: `git push` after each commit (`--push`).")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)


class RunConfig(_Strict):
    """One training run: where to read, how to train, how to gate, where to store."""

    model_name: str = Field(
        DEFAULT_MODEL_NAME,
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="Store folder and version-id prefix (`<name>_model_<UTC time>`).",
    )
    store: str = Field(DEFAULT_STORE_URI, description="Artifact store: a path, `file://…` or `s3://bucket/prefix`.")
    promote: bool = Field(True, description="Promote a model that passes the gate.")
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    _as_written: dict[str, Any] | None = PrivateAttr(default=None)

    @property
    def as_written(self) -> dict[str, Any] | None:
        """The mapping a stored record held (:func:`stored_config`), old names and all; ``None`` otherwise."""
        return self._as_written


# -- renamed settings ---------------------------------------------------------
@dataclass(frozen=True)
class Renamed:
    """Where a setting went (its new dotted name) and ``until``, the last release that reads the old name.

    ``convert(value, section)`` maps an old value whose meaning changed (``section``: the mapping
    the old name sits in); ``new=None`` retires a setting: read, warned about and ignored, ``note``
    saying what replaces it.
    """

    new: str | None
    until: str
    note: str = ""
    convert: Callable[[Any, Mapping[str, Any]], Any] | None = None

    def read_by(self, release: str = __version__) -> bool:
        """Whether spamops ``release`` still reads the old name in a config file."""
        return _release(release) <= _release(self.until)


# Old dotted name -> Renamed.  To rename a setting: rename the field, add an entry whose ``until`` is
# the next release, and say so in README "Configuration".  Entries are never removed: the model
# cards that embed a configuration are read with this table for as long as they are kept
# (spamops.records), and after ``until`` a config file with the old name is refused with the new one.
RENAMED_SETTINGS: dict[str, Renamed] = {
    # The one duration with an "_s" suffix; the others spell out "_seconds" (or have no unit).
    "train.dask_connect_timeout_s": Renamed("train.dask_connect_timeout_seconds", until="0.2"),
    # The canary judge's rewrite (docs/rollout.md, "Renamed settings").
    "rollout.analysis.inconclusive_limit": Renamed(
        "rollout.analysis.undecided_deadline",
        until="0.2",
        note="N inconclusive checks in a row became (N+1) intervals undecided",
        convert=lambda value, section: (int(value) + 1) * float(section.get("interval", 60.0)),
    ),
    "rollout.analysis.max_p99_seconds": Renamed("rollout.analysis.max_latency_seconds", until="0.2"),
    "rollout.analysis.max_spam_rate_diff": Renamed("rollout.analysis.spam_rate_tolerance", until="0.2"),
    "rollout.analysis.max_probability_shift": Renamed(
        None, until="0.2", note="a KS distance; now probability_shift_tolerance, a Wasserstein distance"
    ),
    "rollout.analysis.success_rate_query": Renamed(
        None, until="0.2", note="a PromQL ratio; now rollout.analysis.success_rate (provider, or custom selectors)"
    ),
    "rollout.analysis.routed_requests_query": Renamed(
        None, until="0.2", note="the success-rate provider's requests selector counts what was routed"
    ),
}


class RenamedSettingWarning(DeprecationWarning):
    """A config file used a setting's old name; it is read as the new one until the entry's release."""


def _release(text: str) -> tuple[int, int]:
    """(major, minor) of a version string; a source tree's ``0.0.0+source`` is (0, 0)."""
    found = re.match(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def rename_settings(
    raw: Mapping[str, Any],
    source: str,
    *,
    renamed: Mapping[str, Renamed] | None = None,
    release: str = __version__,
    stored: bool = False,
) -> dict[str, Any]:
    """``raw`` (a config mapping) with every old setting name moved to its new one.

    A config file (``stored=False``) gets a :class:`RenamedSettingWarning` per old name, naming
    ``source`` and the new name, and is refused (:class:`BadInputError`) when it sets both names or
    when ``release`` is later than the entry's ``until``.  A stored record's configuration
    (``stored=True``: a model card) is renamed silently and at any release: it is kept as written.
    """
    table = RENAMED_SETTINGS if renamed is None else renamed
    out: dict[str, Any] = _copy(raw)
    for old, entry in table.items():
        *parents, leaf = old.split(".")
        node = _walk(out, parents)
        if node is None or leaf not in node:
            continue
        if entry.new is None:  # retired: nothing reads it any more
            node.pop(leaf)
            if stored:
                continue
            if not entry.read_by(release):
                raise BadInputError(f"{source}: {old} was retired ({entry.note}); remove it from the file")
            warnings.warn(
                RenamedSettingWarning(
                    f"{source}: {old} is retired and ignored ({entry.note}); remove it from the file"
                ),
                stacklevel=2,
            )
            continue
        *new_parents, new_leaf = entry.new.split(".")
        target = _walk(out, new_parents, create=True)
        if target is None:
            continue  # a non-mapping where the new name's section belongs: validation names it
        value = entry.convert(node[leaf], node) if entry.convert else node[leaf]
        if stored:
            node.pop(leaf)
            target.setdefault(new_leaf, value)
            continue
        if new_leaf in target:
            raise BadInputError(
                f"{source}: both {old} and {entry.new} are set; {old} is the old name, keep {entry.new}"
            )
        if not entry.read_by(release):
            raise BadInputError(
                f"{source}: {old} was renamed to {entry.new} (spamops {entry.until} read the old name for the "
                f"last time); rename it in the file"
            )
        node.pop(leaf)
        target[new_leaf] = value
        read_as = f" ({entry.note}: {value!r})" if entry.convert else ""
        warnings.warn(
            RenamedSettingWarning(
                f"{source}: {old} is now {entry.new}{read_as}; the old name is read until spamops {entry.until}, "
                f"rename it in the file"
            ),
            stacklevel=2,
        )
    return out


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def _walk(root: dict[str, Any], path: list[str], *, create: bool = False) -> dict[str, Any] | None:
    """The mapping at ``path`` under ``root`` (made when ``create``), or ``None`` if there is none."""
    node = root
    for part in path:
        child = node.get(part)
        if child is None and create:
            child = node[part] = {}
        if not isinstance(child, dict):
            return None
        node = child
    return node


def load_config(path: str | Path | None) -> RunConfig:
    """Read and validate a YAML config; ``None`` gives all defaults.  Old setting names are renamed (warned)."""
    if path is None:
        return RunConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{path}: config file does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BadInputError(f"{path}: cannot read config as YAML: {exc}".splitlines()[0]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadInputError(f"{path}: config must be a YAML mapping, got {type(raw).__name__}")
    raw = rename_settings(raw, str(path))
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise BadInputError(f"{path}: invalid config: {problems}") from None
    if refusal := config.rollout.analysis.refusal():
        raise BadInputError(f"{path}: invalid config: {refusal}")
    return config


def stored_config(raw: Mapping[str, Any]) -> RunConfig:
    """The configuration a stored record embeds (a model card's ``config``), as this build reads it.

    Old setting names are renamed (silently: the record is kept as written, in ``as_written``);
    settings this build does not know - a newer writer's - are left out, and those it misses take
    their defaults.
    """
    config = RunConfig.model_validate(rename_settings(raw, "stored", stored=True), extra="ignore")
    config._as_written = _copy(raw)
    return config


def defaults_yaml() -> str:
    """All defaults as YAML: the one documented place for them."""
    return yaml.safe_dump(RunConfig().model_dump(mode="json"), sort_keys=False)


def defaults_markdown() -> str:
    """The README's settings table: every leaf setting, its default and its meaning."""
    lines = ["| setting | default | meaning |", "|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        defaults = model().model_dump(mode="json")
        for name, info in model.model_fields.items():
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                walk(info.annotation, f"{prefix}{name}.")
            else:
                lines.append(f"| `{prefix}{name}` | `{json.dumps(defaults[name])}` | {info.description or ''} |")

    walk(RunConfig, "")
    return "\n".join(lines) + "\n"

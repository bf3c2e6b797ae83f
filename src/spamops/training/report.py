"""The human report stored with every version: ``report.md`` and its PNG plots."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: the trainer runs in a Job without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay  # noqa: E402

from spamops.features import LABELS  # noqa: E402
from spamops.records import CardContent, GateRecord  # noqa: E402
from spamops.training.gate import table  # noqa: E402

PLOTS = ("confusion_matrix.png", "roc_curve.png", "precision_recall.png")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plots(y_true: np.ndarray, y_pred: np.ndarray, spam_score: np.ndarray) -> dict[str, bytes]:
    """The three diagnostic plots of a held-out evaluation, as PNG bytes by file name."""
    draw = {
        PLOTS[0]: (
            "Confusion matrix (held-out)",
            lambda ax: ConfusionMatrixDisplay.from_predictions(
                y_true, y_pred, labels=[0, 1], display_labels=LABELS, ax=ax, colorbar=False
            ),
        ),
        PLOTS[1]: (
            "ROC curve",
            lambda ax: RocCurveDisplay.from_predictions(
                y_true, spam_score, pos_label=1, name="spam", ax=ax, plot_chance_level=True
            ),
        ),
        PLOTS[2]: (
            "Precision-recall curve",
            lambda ax: PrecisionRecallDisplay.from_predictions(
                y_true, spam_score, pos_label=1, name="spam", ax=ax, plot_chance_level=True
            ),
        ),
    }
    return {name: _plot(title, plot) for name, (title, plot) in draw.items()}


def _plot(title: str, plot) -> bytes:
    fig, ax = plt.subplots(figsize=(4, 4))
    plot(ax)
    ax.set_title(title)
    return _png(fig)


def markdown(card: CardContent, model_name: str, version: str, decision: GateRecord) -> str:
    """A readable summary of one version: data, parameters, metrics, gate, plots."""
    m = card.metrics
    data = card.data
    sources = "\n".join(
        f"| {s.uri} | {s.source_schema} | {s.rows} | {s.bad_rows} | `{s.sha256[:12]}` |" for s in data.sources
    )
    snaps = card.datasets
    (tn, fp), (fn, tp) = m.confusion_matrix
    return f"""# {model_name} {version}

Created {card.created_at:%Y-%m-%dT%H:%M:%SZ} by spamops {card.code_version}; gate **{"passed" if decision.passed else "refused"}**.

## Data ({data.rows} rows, fingerprint `{data.fingerprint}`)

| source | schema | rows | bad rows | sha256 |
|---|---|---|---|---|
{sources}

Class balance: {data.class_counts}; exact duplicate rows kept: {data.duplicate_rows}.

Snapshots (what this version was trained and judged on): training rows `{snaps.train.sha256[:12]}` ({snaps.train.rows}),
held-out rows `{snaps.test.sha256[:12]}` ({snaps.test.rows}), under `{model_name}/datasets/`.

## Model

`{card.params}` (cross-validated {card.training.scoring} = {card.training.cv_score:.4f}).

## Held-out evaluation ({m.rows} rows)

| metric | value |
|---|---|
| accuracy | {m.accuracy:.4f} |
| always-ham baseline accuracy | {m.baseline_accuracy:.4f} |
| balanced accuracy | {m.balanced_accuracy:.4f} |
| spam precision | {m.spam_precision:.4f} |
| spam recall | {m.spam_recall:.4f} |
| spam F1 | {m.spam_f1:.4f} |
| ROC-AUC | {m.roc_auc:.4f} |

Confusion matrix: {tn} ham kept, {fp} ham flagged as spam, {fn} spam missed, {tp} spam caught.

## Quality gate

{table(decision)}

## Plots

![confusion matrix]({PLOTS[0]})
![ROC curve]({PLOTS[1]})
![precision-recall curve]({PLOTS[2]})
"""

"""Predictor settings that are ours rather than KServe's (batch and body limits, table bounds)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024  # 1000 SMS of up to ~2 KB each, with JSON overhead
DEFAULT_TABLE_MAX_LENGTH = 5000
DEFAULT_TABLE_MAX_PUNCT = 1000
DEFAULT_TABLE_MAX_CELLS = 2_000_000  # 16 MB of probabilities; a few seconds of batched KNN at load
# Not an operator setting: up to this many rows (or values), plain Python beats numpy's per-call
# overhead; shared by request validation and the metric histograms.
SMALL_BATCH = 16


@dataclass(frozen=True)
class ServingSettings:
    """Limits a request must respect and bounds of the precomputed decision table.

    The table covers ``[0, min(training max, table_max_*)]`` per feature; the
    caps bound load time and memory should a card report a huge training range.
    """

    max_batch: int = DEFAULT_MAX_BATCH
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    table_max_length: int = DEFAULT_TABLE_MAX_LENGTH
    table_max_punct: int = DEFAULT_TABLE_MAX_PUNCT
    table_max_cells: int = DEFAULT_TABLE_MAX_CELLS

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_body_bytes", "table_max_cells"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("table_max_length", "table_max_punct"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.table_max_punct + 1 > self.table_max_cells:
            # the table always holds a whole punct axis (length 0 at least): say so at start-up
            raise ValueError(
                f"table_max_cells ({self.table_max_cells}) must be at least table_max_punct + 1 "
                f"({self.table_max_punct + 1})"
            )


DEFAULT_SHADOW_QUEUE = 256  # batches waiting for the shadow; at most 256 x max_batch rows held
DEFAULT_SHADOW_SAMPLE = 100  # disagreements kept for the debug endpoint


@dataclass(frozen=True)
class ShadowSettings:
    """Bounds of shadow scoring (:mod:`spamops.serving.shadow`): its queue and its disagreement sample."""

    queue_size: int = DEFAULT_SHADOW_QUEUE
    sample_size: int = DEFAULT_SHADOW_SAMPLE

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError("shadow_queue_size must be >= 1")
        if self.sample_size < 0:
            raise ValueError("shadow_sample_size must be >= 0")

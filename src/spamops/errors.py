"""Error types and the process exit codes they map to.

The exit codes are a public contract: the training Job's podFailurePolicy
maps ``GATE_REFUSED`` to ``FailJob`` so a refused model is not retried,
while ``FAILURE`` (a crash, a storage outage) and ``INTERRUPTED``/``TERMINATED``
(a stopped or evicted pod) are retried within backoffLimit.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Stable exit codes of every ``spamops`` command (documented in README)."""

    OK = 0
    FAILURE = 1
    BAD_INPUT = 2
    GATE_REFUSED = 3
    INTERRUPTED = 130  # SIGINT (128 + 2) before the command committed anything
    TERMINATED = 143  # SIGTERM (128 + 15), e.g. a pod evicted or stopped; see spamops.interrupts


class SpamopsError(Exception):
    """Base class: an error the CLI reports as one line, without a traceback."""

    exit_code: ExitCode = ExitCode.FAILURE


class BadInputError(SpamopsError):
    """The user's data, config or arguments are wrong; fixing them fixes the run."""

    exit_code = ExitCode.BAD_INPUT


class StoreError(SpamopsError):
    """The artifact store failed (unreachable, denied, inconsistent)."""


class StoreSettingsError(StoreError):
    """The store's settings are wrong (credentials, bucket, TLS): a retry cannot fix it."""

    exit_code = ExitCode.BAD_INPUT


class ConflictError(StoreError):
    """A conditional write lost a race: someone else changed the object first."""


class IntegrityError(StoreError):
    """Stored bytes do not match the checksum recorded for them."""


class NotFoundError(StoreError):
    """A version, pointer or object that was asked for does not exist."""

    exit_code = ExitCode.BAD_INPUT

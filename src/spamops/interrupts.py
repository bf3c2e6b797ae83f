"""Stop signals (SIGINT, SIGTERM) during a command: they stop it until it commits, and never after.

A command runs inside :func:`stop_on_signals`: a stop signal raises :class:`Interrupted`, which the
CLI turns into exit 130 (SIGINT) or 143 (SIGTERM), the codes a shell and Kubernetes report for a
process those signals ended.  The step that changes what production serves (the pointer write)
runs inside :func:`commit`: a signal that arrives while it runs waits for it, and once it succeeded
the command is past the point of no return, so later signals are noted and the command finishes
(its output included) with its own exit code.  A signal can therefore never leave the store
promoted while the command reports an interruption, nor interrupted halfway through a promotion.

Python runs signal handlers in the main thread between bytecodes, whichever thread the kernel
delivered the signal to, so the flags below need no lock.  Outside :func:`stop_on_signals` (a
library caller, a thread other than the main one) both are no-ops and signals keep their handlers.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from spamops.errors import ExitCode

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, which it generalises
    """A stop signal arrived before the command committed; nothing it committed is lost."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> ExitCode:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return ExitCode(128 + self.signum)


@dataclass
class _State:
    armed: bool = False
    committing: bool = False
    committed: bool = False
    pending: int | None = None  # a signal that arrived during or after the commit


_state = _State()


def _on_signal(signum: int, _frame: object) -> None:
    if _state.committing or _state.committed:
        _state.pending = _state.pending or signum
        return
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` until :func:`commit` succeeded."""
    global _state
    if threading.current_thread() is not threading.main_thread() or _state.armed:
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    _state = _State(armed=True)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state = _State()


@contextmanager
def commit() -> Iterator[None]:
    """The write after which the command must finish: a signal meanwhile waits; after success it no longer stops it.

    When the step fails (a lost race the caller retries, an outage), a signal that arrived during it
    stops the command as usual.
    """
    if not _state.armed:
        yield
        return
    outer = _state.committing
    _state.committing = True
    try:
        yield
        _state.committed = True
    finally:
        _state.committing = outer
        if not _state.committed and not outer and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            raise Interrupted(signum)

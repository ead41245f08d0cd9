"""Turn termination signals into an exception, so that a killed run cleans up on its way out.

Python's default action for SIGTERM (``kill PID``, ``docker stop``, ``systemctl stop``, a batch scheduler's
time limit) and SIGHUP (the terminal closing) ends the process at once: no ``finally`` block runs, so an
encoder child keeps running and half-written temporary files stay behind. Ctrl-C (SIGINT) is different:
Python raises KeyboardInterrupt, and every ``finally`` and ``with`` block on the way out runs.
:func:`terminate_as_interrupt` gives SIGTERM and SIGHUP the same treatment for a stretch of code::

    from hybridgen.signals import Terminated, terminate_as_interrupt

    def main() -> int:
        with terminate_as_interrupt():
            try:
                return run()
            except Terminated as stop:   # before `except KeyboardInterrupt`: it is one
                return stop.exit_status  # 143 for SIGTERM, as a shell reports a process it killed
            except KeyboardInterrupt:
                return 130

:class:`Terminated` subclasses KeyboardInterrupt, so code that already cleans up after Ctrl-C (the writers in
:mod:`hybridgen.video`, which kill their ffmpeg child and delete their temporary file) does so for these
signals too, and ``except Exception`` does not swallow it. The process-level choice (to install it at all,
the exit status) belongs to the program's entry point, which is why this is a context manager and not
something importing hybridgen does.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["TERMINATION_SIGNALS", "Terminated", "terminate_as_interrupt"]

# SIGHUP does not exist on Windows
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when a signal that :func:`terminate_as_interrupt` watches arrives.

    ``signum`` is the signal's number; ``exit_status`` (128 + signum) is the status shells give a process
    that signal killed, for an entry point to return once everything has been cleaned up. Left uncaught, it
    ends Python as an uncaught KeyboardInterrupt does (status of SIGINT), hence the advice to catch it.
    """

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(f"terminated by {signal.Signals(self.signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def __reduce__(self):  # pickled (multiprocessing) by its signal number, not its message
        return type(self), (self.signum,)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt(signals: tuple[int, ...] = TERMINATION_SIGNALS) -> Iterator[None]:
    """While active, SIGTERM and SIGHUP (or ``signals``) raise :class:`Terminated` in the main thread.

    The previous handlers are restored on exit, however the block ends. A signal the process ignores stays
    ignored (``nohup`` ignores SIGHUP so that a job outlives its terminal: it must keep doing so). Each signal
    raises again, so a second SIGTERM during cleanup interrupts that cleanup step; SIGKILL is never caught.
    Outside the main thread, where Python cannot install signal handlers, it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in signals:
            handler = signal.getsignal(signum)
            if handler == signal.SIG_IGN:
                continue
            previous[signum] = handler
            signal.signal(signum, _raise_terminated)
        yield
    finally:
        for signum, handler in previous.items():
            # None: the handler was set outside Python, which cannot be restored; the default is closest
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

"""Holding Ctrl-C over a few milliseconds that must not be cut in half.

Python raises KeyboardInterrupt between any two bytecodes of the main thread. Two places cannot take it:

- inside a C callback (espeak-ng's audio callback): raised there, it is printed as an ignored exception
  and lost;
- while a worker process is being started: raised after the fork server has forked the worker but before
  the pool has recorded it, the worker is nobody's, waits for work forever, and keeps the fork server
  alive, so stopping the fork server waits forever too (a build that hangs on Ctrl-C).

`hold_ctrl_c()` swaps in a handler that only notes the signal, and raises KeyboardInterrupt as soon as the
block is over. The handler runs in the main thread whichever thread the kernel delivered the signal to
(CPython's rule), so blocking the signal's mask would not do. Elsewhere than the main thread no handler
runs, and the block is a plain pass-through.
"""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def hold_ctrl_c():
    """Defer Ctrl-C (SIGINT) until the block has finished, then raise KeyboardInterrupt if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt

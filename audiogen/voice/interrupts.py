"""Holding Ctrl-C (and a worker's SIGTERM) over a few milliseconds that must not be cut in half.

Python runs a signal's handler between any two bytecodes of the main thread, and an exception it raises
lands there. Two places cannot take one:

- inside a C callback (espeak-ng's audio callback): raised there, the exception is printed as "Exception
  ignored" and lost (a KeyboardInterrupt in the build, or the `_Terminated` that unwinds a worker);
- while a worker process is being started: raised after the fork server has forked the worker but before
  the pool has recorded it, the worker is nobody's, waits for work forever and keeps the fork server
  alive, so stopping the fork server waits forever too (a build that hangs on Ctrl-C).

`hold_interrupts()` swaps in a handler that only notes the signal, and once the block is over restores
the previous handler and runs it for each signal that came, so its exception is raised there. Only
signals with a Python handler are held: one that is ignored (SIGINT in a worker, which leaves Ctrl-C to
its parent) or left to the system stays as it was. The handler runs in the main thread whichever thread
the kernel delivered the signal to (CPython's rule), so masking the signal would not do. Elsewhere than
the main thread no handler runs, and the block is a plain pass-through.
"""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def hold_interrupts(*, children: bool = False):
    """Defer SIGINT and SIGTERM's Python handlers until the block has finished, then run them.

    `children`: the block starts processes (the fork server, workers). SIGINT is then also masked in this
    thread, as multiprocessing does when it starts its resource tracker: a process started here begins
    with it masked, so a Ctrl-C to the process group during its first milliseconds (the interpreter
    starting, before the fork server sets SIGINT to "ignore") waits instead of killing it with a
    KeyboardInterrupt traceback. Whatever such a child runs must unmask SIGINT once it ignores it
    (the pool's workers do); the fork server ignores it, so a pending one is dropped there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held: dict[int, object] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):
            held[signum] = signal.signal(signum, lambda n, frame: caught.append(n))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if children else None
    try:
        yield
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C that waited arrives now: noted
        for signum, handler in held.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            held[signum](signum, None)  # raises (KeyboardInterrupt, _Terminated) here, after the block

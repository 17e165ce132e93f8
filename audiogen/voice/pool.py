"""Synthesising many phrases at once: worker processes for the CPU-bound engines, threads for gTTS.

`ProcessPool` runs one engine in a few worker processes. Each worker creates the engine (and, through
the engine's optional `prepare(voice)`, loads its model) once, when it starts, then takes one phrase at
a time: synthesis *and* `prepare_speech` (resampling, levelling) run in the worker, and the parent only
writes the finished clip into the cache. The parent hands out one phrase per idle worker, so it always
knows which phrase a worker was narrating: a worker that dies (a crash in a native library, the OOM
killer) is reported as an `EngineError` naming the phrase and the exit status, never a hang. Workers
ignore SIGINT: on Ctrl-C the parent gets the KeyboardInterrupt, terminates them and re-raises.

Workers start with the 'forkserver' method (see START_METHOD): never `fork` from a process that may
already hold onnxruntime's or the render stage's threads. multiprocessing starts two helper processes
for them, the fork server and the resource tracker, and leaves both running until the interpreter exits
(when they notice, and exit, after it: reparented to init, their CPU time lost to whoever timed it).
When the last pool closes, `release_helpers` stops and reaps the ones a pool started, so nothing audiogen
started outlives `close`.

The network counterpart (gTTS on a few threads under a shared rate limit) is in `threads`.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait

from audiogen.routine.errors import AudiogenError, EngineError
from audiogen.voice.interrupts import hold_interrupts

#: How worker processes start. 'fork' would copy whatever threads the parent holds (onnxruntime's,
#: the render pool's, a writer thread) into a child that cannot use them; 'forkserver' forks every
#: worker from a clean single-threaded server process, 'spawn' starts a fresh interpreter per worker.
#: Measured on 2 cores, first Piper worker ready (model loaded): fork ~0.4 s, forkserver ~0.65 s,
#: spawn ~0.67 s; espeak: forkserver ~0.28 s, spawn ~0.3 s. Each worker inherits the parent's current
#: directory and environment when it starts (not the server's).
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
#: Seconds terminated workers get to unwind (and reap their ffmpeg, which would otherwise outlive the
#: build) before they are killed; a loaded machine needed more than 1 s. They exit in parallel.
TERM_GRACE_S = 3.0
#: Seconds a closing worker gets to finish its phrase before it is terminated.
CLOSE_GRACE_S = 2.0


def default_workers() -> int:
    """`AUDIOGEN_WORKERS` (a positive integer), else the number of cores."""
    raw = os.environ.get("AUDIOGEN_WORKERS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    return max(1, os.cpu_count() or 1)


# -- the worker process -----------------------------------------------------------------------------
def _portable(e: BaseException, engine: str, text: str | None) -> AudiogenError:
    """An exception raised in a worker as an error the parent can unpickle and show."""
    import pickle

    if isinstance(e, AudiogenError):
        try:
            pickle.loads(pickle.dumps(e))
            return e
        except Exception:  # noqa: BLE001 - an unpicklable attribute: keep the message
            return type(e)(e.message, hint=e.hint) if isinstance(e, EngineError) else EngineError(e.message)
    what = f" narrating {text[:60]!r}" if text is not None else " starting"
    return EngineError(f"{engine} failed in a worker process{what}: {type(e).__name__}: {e}")


class _Terminated(BaseException):
    """SIGTERM (the parent's `terminate`) in a worker: unwinds, so the engine's own child processes
    (ffmpeg, under `subprocess.run`) are killed and reaped rather than left orphaned."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def _worker(conn, name: str, factory: Callable[[], object], warm, cwd: str, env: dict[str, str]) -> None:
    """A worker's life (see `_work`); on SIGTERM it unwinds, then dies of the signal as before."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # masked while the pool started it
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _work(conn, name, factory, warm, cwd, env)
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # the exit status stays "killed by SIGTERM"


def _work(conn, name: str, factory: Callable[[], object], warm, cwd: str, env: dict[str, str]) -> None:
    """Create the engine once, then narrate (index, text, voice) messages until None."""
    try:
        # a forkserver child starts with the server's directory and environment (those of the first
        # pool in this process): take the parent's current ones, so relative model paths resolve alike
        os.chdir(cwd)
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)
        engine = factory()
        reason = engine.unavailable_reason()
        if reason is not None:
            from audiogen.routine.errors import EngineUnavailable

            raise EngineUnavailable(f"{name} is not available in a worker process: {reason}")
        prepare = getattr(engine, "prepare", None)
        if prepare is not None and warm is not None:
            prepare(warm)  # load the model now, before the first phrase
        from audiogen.voice.clips import prepare_speech
    except _Terminated:
        raise
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("failed", None, _portable(e, name, None)))
        return
    conn.send(("ready", None, os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg is None:
            return
        index, text, voice = msg
        try:
            clip = engine.synthesize(text, voice)
            result = ("ok", index, prepare_speech(clip.samples, clip.rate))
        except Exception as e:  # noqa: BLE001 - every failure becomes an AudiogenError for the parent
            result = ("err", index, _portable(e, name, text))
        conn.send(result)


# -- the parent's side ------------------------------------------------------------------------------
@dataclass(eq=False)
class _Worker:
    proc: multiprocessing.process.BaseProcess
    conn: object
    state: str = "starting"  # starting | idle | busy | failed
    task: int | None = None


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _stop(workers: list[_Worker], force: bool) -> None:
    """Ask workers to finish (or terminate them) and reap them; bounded in time either way."""
    if not force:
        for w in workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + CLOSE_GRACE_S
        for w in workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.proc.is_alive():
            w.proc.terminate()
    deadline = time.monotonic() + TERM_GRACE_S
    for w in workers:  # a terminated worker unwinds: it kills and reaps its ffmpeg before it exits
        w.proc.join(max(0.0, deadline - time.monotonic()))
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(1.0)
        try:
            w.conn.close()
        except OSError:
            pass
    workers.clear()


def _stop_and_release(workers: list[_Worker]) -> None:
    """A pool that was never closed, when it is collected (or at exit): terminate, reap, release."""
    _stop(workers, True)
    release_helpers()


# -- multiprocessing's helper processes ---------------------------------------------------------------
#: Pools with workers (alive or not yet reaped), and which helpers a pool started (those are ours to stop).
_running: weakref.WeakSet = weakref.WeakSet()
_owned = {"forkserver": False, "resource_tracker": False}
_helpers_lock = threading.Lock()


def _forkserver_pid() -> int | None:
    # private: multiprocessing has no public API to ask for (or stop) its fork server
    return getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid", None)


def _tracker_pid() -> int | None:
    # private, like the fork server's (a process whose parent started the tracker shares it: pid None)
    return getattr(getattr(multiprocessing.resource_tracker, "_resource_tracker", None), "_pid", None)


def _note_helpers(before: tuple[int | None, int | None]) -> None:
    """After starting workers: a helper that was not running before is this module's to stop."""
    with _helpers_lock:
        if before[0] is None and _forkserver_pid() is not None:
            _owned["forkserver"] = True
        if before[1] is None and _tracker_pid() is not None:
            _owned["resource_tracker"] = True


def release_helpers() -> bool:
    """Stop and reap the fork server and resource tracker a pool started, once no pool has workers.

    Left alone: helpers something else started, and both whenever a pool is still running or some other
    multiprocessing child is alive (the fork server exits only when every process it forked has closed
    its end of the server's pipe, and other code may rely on either helper). Idempotent; a pool started
    later starts fresh helpers (~0.1 s). Returns whether nothing of ours is left running. Uses
    multiprocessing's private `_stop()` (what its own tests call); on a Python without it, the helpers
    are left to exit with the interpreter, as before.
    """
    with _helpers_lock:
        if any(p._workers for p in list(_running)):
            return False
        if not (_owned["forkserver"] or _owned["resource_tracker"]):
            return True
        if multiprocessing.active_children():  # someone else's children: they need the helpers
            return False
        for name, module, attr, pid in (
                ("forkserver", multiprocessing.forkserver, "_forkserver", _forkserver_pid),
                ("resource_tracker", multiprocessing.resource_tracker, "_resource_tracker", _tracker_pid)):
            if not _owned[name]:
                continue
            _owned[name] = False
            stop = getattr(getattr(module, attr, None), "_stop", None)
            if stop is None or pid() is None:
                continue
            try:
                # closes the helper's pipe (it exits at EOF: no worker is left holding it) and waits
                stop()
            except (OSError, ChildProcessError):
                pass  # already gone (reaped elsewhere)
        return _forkserver_pid() is None and _tracker_pid() is None


class ProcessPool:
    """`size` worker processes of one engine, started lazily by the first `run` and reused until `close`."""

    def __init__(self, name: str, factory: Callable[[], object], size: int, *, method: str = START_METHOD) -> None:
        self.name = name
        self.factory = factory
        self.size = max(1, size)
        self.method = method
        self._ctx = multiprocessing.get_context(method)
        self._workers: list[_Worker] = []
        self._started: float | None = None
        #: Seconds from starting the workers until the first one was ready (model loaded).
        self.startup_s: float | None = None
        self._finalizer = weakref.finalize(self, _stop_and_release, self._workers)

    @property
    def running(self) -> bool:
        return bool(self._workers)

    def _start(self, warm) -> None:
        self._started = time.perf_counter()
        _running.add(self)
        before = (_forkserver_pid(), _tracker_pid())
        try:
            self._start_workers(warm)
        finally:
            _note_helpers(before)

    def _start_workers(self, warm) -> None:
        if self.method in ("forkserver", "spawn"):
            # started first, on its own: starting it unmasks SIGINT in this thread (multiprocessing masks
            # it around the start, then unmasks rather than restores), which would undo the mask below
            multiprocessing.resource_tracker.ensure_running()
        for i in range(self.size):
            # Ctrl-C waits until the worker is started and recorded (~0.05 s): one that landed in between
            # would leave a worker nobody stops, and stopping the fork server would then wait forever
            with hold_interrupts(children=True):
                parent, child = self._ctx.Pipe()
                proc = self._ctx.Process(target=_worker, name=f"audiogen-{self.name}-{i + 1}", daemon=True,
                                         args=(child, self.name, self.factory, warm, os.getcwd(),
                                               dict(os.environ)))
                proc.start()
                self._workers.append(_Worker(proc, parent))
                child.close()

    def run(self, tasks: Sequence[tuple[str, object]], on_result: Callable[[int, object], None]) -> None:
        """Narrate every (text, voice) task; `on_result(index, samples)` runs here as each clip lands.

        The first failure stops the hand-out; phrases already being narrated still land (and are
        kept), then the failure is raised. A worker that dies is an EngineError naming its phrase.
        """
        if not tasks:
            return
        todo = deque(range(len(tasks)))
        error: AudiogenError | None = None
        lost = False
        try:
            if not self._workers:
                self._start(tasks[0][1])
            while True:
                for w in self._workers:
                    if w.state == "idle" and todo and error is None:
                        w.task = todo.popleft()
                        w.conn.send((w.task, *tasks[w.task]))
                        w.state = "busy"
                if not any(w.state == "busy" for w in self._workers) and (error is not None or not todo):
                    break
                if not self._workers:  # every worker failed to start: `error` says why
                    break
                ready = set(wait([w.conn for w in self._workers] + [w.proc.sentinel for w in self._workers]))
                for w in list(self._workers):
                    if w.conn in ready or (w.proc.sentinel in ready and w.conn.poll()):
                        try:
                            kind, index, payload = w.conn.recv()
                        except (EOFError, OSError):
                            kind, index, payload = "died", None, None
                        if kind == "ready":
                            w.state = "idle"
                            if self.startup_s is None and self._started is not None:
                                self.startup_s = time.perf_counter() - self._started
                        elif kind == "ok":
                            w.state, w.task = "idle", None
                            on_result(index, payload)
                        elif kind == "err":
                            w.state, w.task = "idle", None
                            error = error or payload
                        elif kind == "failed":
                            w.state = "failed"
                            error = error or payload
                            self._drop(w)
                            lost = True
                        if kind != "died":
                            continue
                    elif w.proc.sentinel not in ready:
                        continue
                    # the process ended without a word: it crashed
                    w.proc.join(1.0)
                    code = w.proc.exitcode
                    how = (f"killed by {_signal_name(code)}" if code is not None and code < 0
                           else f"exit code {code}")
                    doing = f"while narrating {tasks[w.task][0][:60]!r}" if w.task is not None else "while starting"
                    error = error or EngineError(
                        f"a {self.name} worker process died ({how}) {doing}",
                        hint="a crash inside the engine or its voice model; AUDIOGEN_WORKERS=1 narrates "
                             "in the main process instead")
                    self._drop(w)
                    lost = True
        except BaseException:
            self.close(force=True)  # Ctrl-C, or on_result failed: no half-answered workers left behind
            raise
        if error is not None:
            if lost:
                self.close()  # a pool that lost a worker is not reused: the next run starts a fresh one
            raise error

    def _drop(self, w: _Worker) -> None:
        self._workers.remove(w)
        _stop([w], force=True)

    def close(self, *, force: bool = False) -> None:
        """Stop and reap the workers (after their current phrase, or at once with `force`), and, when no
        other pool is running, the helper processes they needed (`release_helpers`); safe to call twice."""
        _stop(self._workers, force)
        _running.discard(self)
        release_helpers()

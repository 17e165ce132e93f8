"""Building a library on a Dask cluster: one task per distinct clip, then one task per session.

Workers need audiogen and its engines installed, nothing else: routine data, sounds and clip audio
travel through Dask, and only this process (the client) writes outputs, the manifest, the indexes and
its own clip cache. A phrase used across the library is one task on the whole cluster (its task key is
its cache key), and a worker that dies costs a retry, not the build.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from audiogen.routine.errors import AudiogenError, EngineError, OutputError
from audiogen.voice.engines import VoiceRequest

#: Task retries on top of Dask's own rescheduling of a dead worker's tasks.
RETRIES = 2

#: A throw-away `local:N` cluster has no dashboard, so it needs none of the diagnostics that feed one:
#: Dask's statistical profiler samples every worker's stack 100 times a second, and the memory monitors
#: and event-loop ticks wake every process 10 to 50 times a second. On a machine whose cores all run
#: tasks that is CPU taken from them (measured: 1.7 CPU-s per 20 s idle with 2 workers, 0.3 without).
LOCAL_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def connect(address: str, timeout: float | None = None):
    """A `distributed.Client` for `address` (`tcp://host:port`, or `local:N` for N local processes).

    The connect timeout is `AUDIOGEN_SCHEDULER_TIMEOUT` seconds (default 10; Dask's own is 30).
    """
    import os

    if timeout is None:
        timeout = float(os.environ.get("AUDIOGEN_SCHEDULER_TIMEOUT", "10"))
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise OutputError("building on a cluster needs the Dask extra",
                          hint="pip install 'audiogen[dask]'") from None
    try:
        if address.startswith("local:"):
            try:
                n = int(address.split(":", 1)[1])
            except ValueError:
                raise OutputError(f"bad scheduler {address!r}", hint="write local:N, e.g. local:2") from None
            import dask

            with dask.config.set(LOCAL_CONFIG):  # read by the scheduler, nannies and workers as they start
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR)
            return Client(cluster, timeout=timeout)
        return Client(address, timeout=timeout)
    except OutputError:
        raise
    except (OSError, TimeoutError, ValueError) as e:
        raise OutputError(
            f"cannot reach the Dask scheduler at {address}: {e}",
            hint="start one with `dask scheduler` (and workers with `dask worker ADDRESS`), or build without "
                 "--scheduler",
        ) from None


def close(client) -> None:
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


# -- what runs on the workers ---------------------------------------------------------------------
def synth_clip(engine_name: str, voice: VoiceRequest, text: str) -> np.ndarray:
    """Narrate one phrase in the cache's form (levelled int16 at the internal rate)."""
    from audiogen.voice.clips import prepare_speech
    from audiogen.voice.engines import get_engine

    clip = get_engine(engine_name).synthesize(text, voice)
    return prepare_speech(clip.samples, clip.rate)


def cached_clip(samples: np.ndarray) -> np.ndarray:
    """A clip the client already had: the task carries it, so a lost copy is recomputed, not lost."""
    return samples


def render_remote(audio, clips: dict[str, np.ndarray]) -> tuple[bytes, float | None]:
    """Render one session to MP3 bytes from clips Dask delivered."""
    from audiogen.audio.session import render_bytes

    audio.clips = clips
    return render_bytes(audio)


# -- the client's side ----------------------------------------------------------------------------
#: Dask priority of render tasks: a session whose clips are all made renders before more clips are made,
#: so the two stages overlap and a routine's MP3 is written while later routines are still narrated.
RENDER_PRIORITY = 1


@dataclass
class _Routine:
    """One routine in flight: its sessions, its narration and the clips it still waits for."""

    src: object
    routine: object
    jobs: list
    texts: list[str]
    attempt: int = 0  # bumped when `auto` narrates it again with the next engine
    narration: object = None
    missing: set[str] = field(default_factory=set)  # cache keys not made yet
    done: bool = False


@dataclass
class ClusterStats:
    """What a cluster build sent to the cluster, and how long the client itself worked."""

    clip_tasks: int = 0
    session_tasks: int = 0
    prepare_s: float = 0.0  # planning, covers and lyrics, on the client
    fetch_s: float = 0.0  # clips brought back and written to the client's cache


class _Pipeline:
    """Clips and sessions as one stream of tasks (see `build_on_cluster`)."""

    def __init__(self, client, narrator, prepare, complete, fail, progress, total: int) -> None:
        from distributed import as_completed

        self.client, self.narrator = client, narrator
        self.prepare, self.complete, self.fail, self.progress = prepare, complete, fail, progress
        self.total, self.finished = total, 0
        self.queue = as_completed(loop=client.loop)  # not the process's default client's loop: it may be another
        self.shared: dict[str, object] = {}  # cache key -> future (a clip task, or a cached clip's)
        self.users: dict[str, int] = {}  # cache key -> routines that will still send it to a render
        self.lengths: dict[str, int] = {}  # cache key -> ms, for every clip made or found in the cache
        self.waiting: dict[str, list[tuple[_Routine, int]]] = {}  # cache key -> (routine, attempt)
        self.tasks: dict[object, tuple] = {}  # future -> ("clip", key) or ("render", job, prep, narration)
        self.tries: dict[str, int] = {}  # cache key -> failed clip tasks (a retry gets a new task key)
        self.stats = ClusterStats()

    # -- stage 1: clips --------------------------------------------------------------------------
    def narrate(self, r: _Routine, index: int, total: int) -> None:
        from audiogen.routine.voicing import routine_in, split
        from audiogen.voice.narrate import Narration

        narrator = self.narrator
        self.progress("narrate", {"title": r.routine.title, "index": index, "total": total, "clips": len(r.texts)})
        try:
            engine, voice_id, req, notes = narrator.choose(r.routine)
            # a step's or the phrases' own voice: its clips go to the engine its choice picks
            others = {label: narrator.choose(routine_in(r.routine, label))[:3]
                      for label in dict.fromkeys(split(t)[0] for t in r.texts) if label is not None}
        except AudiogenError as e:
            self.give_up(r, e)
            return
        narration = Narration(engine.name, voice_id, {}, {}, notes=notes)
        narration.voices = {label: (e.name, v) for label, (e, v, _) in others.items()}
        r.narration, r.missing = narration, set()
        from audiogen.voice.pronounce import apply as pronounce

        own = (engine, voice_id, req)
        for name in r.texts:
            label, text = split(name)
            engine, voice_id, req = others[label] if label is not None else own
            spoken = pronounce(text, r.routine.pronounce)  # what the engine says, and what the key hashes
            key = narrator.key(engine, voice_id, req, spoken)
            narration.keys[name] = key
            self.users[key] = self.users.get(key, 0) + 1
            if key in self.shared:  # made (or being made) for another routine of this build
                narration.cache_hits += 1
                if key not in self.lengths:
                    r.missing.add(key)
                    self.waiting.setdefault(key, []).append((r, r.attempt))
                continue
            ms = narrator.cache.length_ms(key)
            if ms is not None:  # the client's cache: sent to the cluster once
                # inside a task, not scattered: if the worker holding it dies, the scheduler sends it again
                self.shared[key] = self.client.submit(cached_clip, narrator.cache.load(key), key=f"cached-{key}",
                                                      retries=RETRIES, pure=False)
                self.lengths[key] = ms
                narration.cache_hits += 1
                self.progress("clip", {"hit": True})
                continue
            tries = self.tries.get(key, 0)
            fut = self.client.submit(synth_clip, engine.name, req, spoken,
                                     key=f"clip-{key}" + (f"-{tries}" if tries else ""), retries=RETRIES, pure=False)
            self.shared[key] = fut
            self.tasks[fut] = ("clip", key)
            self.queue.add(fut)
            self.stats.clip_tasks += 1
            narration.synthesized += 1
            r.missing.add(key)
            self.waiting.setdefault(key, []).append((r, r.attempt))
        if not r.missing:
            self.render(r)

    def clip_done(self, fut, key: str) -> None:
        import time

        from audiogen.dsp.ffmpeg import samples_to_ms

        error: AudiogenError | None = None
        t = time.perf_counter()
        try:
            samples = fut.result()
            self.narrator.cache.put(key, samples)
            self.lengths[key] = samples_to_ms(len(samples))  # what the cache's header says
            self.progress("clip", {"hit": False})
            if not self.users.get(key):  # every routine that wanted it has failed meanwhile
                self.shared.pop(key, None)
        except AudiogenError as e:
            error = e
        except Exception as e:  # noqa: BLE001 - a worker-side failure that is not ours
            error = EngineError(f"a cluster worker could not narrate: {e}")
        self.stats.fetch_s += time.perf_counter() - t
        waiters = [r for r, attempt in self.waiting.pop(key, []) if not r.done and r.attempt == attempt]
        if error is not None:
            self.shared.pop(key, None)
            self.tries[key] = self.tries.get(key, 0) + 1
            for r in waiters:
                self.clip_failed(r, error)
            return
        for r in waiters:
            r.missing.discard(key)
            if not r.missing:
                self.render(r)

    def clip_failed(self, r: _Routine, error: AudiogenError) -> None:
        narrator = self.narrator
        self.release(r)
        explicit = (narrator.engine_override or r.routine.voice.engine) != "auto"
        if explicit or not isinstance(error, EngineError):
            self.give_up(r, error)
            return
        # auto: that engine is out for this build; narrate the routine again with the next one
        narrator.mark_down(r.narration.engine, error.message)
        r.attempt += 1
        self.narrate(r, 1, 1)

    def release(self, r: _Routine) -> None:
        """`r` sends its clips nowhere any more: the client stops holding the ones no other routine needs."""
        for key in set(r.narration.keys.values()):
            self.users[key] -= 1
            if not self.users[key] and key in self.lengths:
                self.shared.pop(key, None)  # renders already submitted keep their inputs on the cluster

    def give_up(self, r: _Routine, error: AudiogenError | None) -> None:
        r.done = True
        for job in r.jobs:
            self.fail(job, error)
            self.session_done(job)

    # -- stage 2: sessions -----------------------------------------------------------------------
    def render(self, r: _Routine) -> None:
        """Every clip of `r` is made: plan its sessions here and send them to render before further clips."""
        import time

        r.done = True
        narration = r.narration
        narration.lengths = {t: self.lengths[k] for t, k in narration.keys.items()}
        for job in r.jobs:
            t = time.perf_counter()
            try:
                prep = self.prepare(job, narration)
            except AudiogenError as e:
                self.fail(job, e)
                self.session_done(job)
                continue
            finally:
                self.stats.prepare_s += time.perf_counter() - t
            audio = replace(prep.audio, clips=None)
            texts = {e.text for e in prep.plan.events if e.kind == "speech"}
            clips = {text: self.shared[narration.keys[text]] for text in texts}
            fut = self.client.submit(render_remote, audio, clips, retries=RETRIES, pure=False,
                                     priority=RENDER_PRIORITY)
            self.tasks[fut] = ("render", job, prep, narration)
            self.queue.add(fut)
            self.stats.session_tasks += 1
        self.release(r)

    def render_done(self, fut, job, prep, narration) -> None:
        from audiogen.routine.atomic import atomic_path

        try:
            data, lufs = fut.result()
            with atomic_path(job.result.mp3) as tmp:  # tagged here, on the client, then put in place
                tmp.write_bytes(data)
                prep.tag(tmp)
            self.complete(job, prep, narration, lufs)
        except AudiogenError as e:
            self.fail(job, e)
        except Exception as e:  # noqa: BLE001 - a worker-side failure that is not ours
            self.fail(job, OutputError(f"a cluster worker could not render {job.result.mp3.name}: {e}"))
        self.session_done(job)

    def session_done(self, job) -> None:
        self.finished += 1
        self.progress("session", {"done": self.finished, "total": self.total, "result": job.result})

    def run(self, routines: list[_Routine]) -> ClusterStats:
        for i, r in enumerate(routines, start=1):
            self.narrate(r, i, len(routines))
        for fut in self.queue:
            task = self.tasks.pop(fut)
            if task[0] == "clip":
                self.clip_done(fut, task[1])
            else:
                self.render_done(fut, *task[1:])
        return self.stats


def _estimated_work(routine, jobs: list) -> int:
    """Roughly how long a routine's sessions are (ms of audio, what rendering costs), from estimated speech."""
    from audiogen.plan.planner import estimate_speech_ms, plan_routine

    try:
        speed = routine.voice.speed
        ms = plan_routine(routine, lambda t: estimate_speech_ms(t, speed), lambda s: 1000, estimated=True).length_ms
    except Exception:  # noqa: BLE001 - only an ordering hint: the real plan reports real problems
        ms = 0
    return sum(job.target_ms or ms for job in jobs)


def build_on_cluster(client, narrator, todo: list, prepare, complete, fail,
                     progress: Callable[[str, dict], None]) -> ClusterStats:
    """Narrate and render `todo` (sessions) on the cluster; the client writes every output as it arrives.

    One task per distinct clip (its key is the clip's cache key, so a phrase shared across the library is
    made once), then one task per session. The stages overlap: as soon as a routine's last clip is made,
    the client (which learns each clip's length as it fills its own cache) plans that routine's sessions
    and submits their renders, with the clip futures as arguments and a higher priority than the clips
    still queued. Routines go longest first, so the renders left at the end, when no clip is left to keep
    the other workers busy, are the shortest.

    `prepare(job, narration)` plans a session (AudiogenError fails it), `complete(job, prep, narration,
    lufs)` finishes it once its MP3 is written, `fail(job, error)` marks it failed. Under `auto`, a clip the
    engine could not make puts that engine out for the build and its routines are narrated again with the
    next one; any other failure fails that routine's sessions only.
    """
    from audiogen.plan.planner import spoken_texts

    by_source: dict = {}
    for job in todo:
        by_source.setdefault(job.source, []).append(job)
    routines = [_Routine(src, jobs[0].routine, jobs, spoken_texts(jobs[0].routine)) for src, jobs in by_source.items()]
    work = {id(r): _estimated_work(r.routine, r.jobs) for r in routines}
    routines.sort(key=lambda r: -work[id(r)])  # stable: equal ones keep the library's order
    return _Pipeline(client, narrator, prepare, complete, fail, progress, len(todo)).run(routines)

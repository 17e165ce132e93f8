"""Building a library on a Dask cluster: one task per distinct clip, then one task per session.

Workers need audiogen and its engines installed, nothing else: routine data, sounds and clip audio
travel through Dask, and only this process (the client) writes outputs, the manifest, the indexes and
its own clip cache. A phrase used across the library is one task on the whole cluster (its task key is
its cache key), and a worker that dies costs a retry, not the build.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .engines import VoiceRequest
from .errors import AudiogenError, EngineError, OutputError

#: Task retries on top of Dask's own rescheduling of a dead worker's tasks.
RETRIES = 2


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
    from .engines import get_engine
    from .narrate import prepare_speech

    clip = get_engine(engine_name).synthesize(text, voice)
    return prepare_speech(clip.samples, clip.rate)


def render_remote(audio, clips: dict[str, np.ndarray]) -> tuple[bytes, float | None]:
    """Render one session to MP3 bytes from clips Dask delivered."""
    from .build import render_bytes

    audio.clips = clips
    return render_bytes(audio)


# -- the client's side ----------------------------------------------------------------------------
def narrate_on_cluster(client, narrator, routines: list, progress: Callable[[str, dict], None]) -> dict:
    """Stage 1: every routine's clips, synthesised on the cluster once per distinct phrase.

    Returns {routine source: (Narration, {text: future or array}) or AudiogenError}; fills the local cache.
    """
    from distributed import as_completed

    from .narrate import Narration
    from .planner import spoken_texts

    out: dict = {}
    pending = list(routines)  # (source path, routine)
    shared: dict[str, object] = {}  # cache key -> future, across the library
    submitted: set[str] = set()  # keys synthesised on the cluster (not yet in the local cache)
    while pending:
        tried = []
        for i, (src, routine) in enumerate(pending, start=1):
            texts = spoken_texts(routine)
            progress("narrate", {"title": routine.title, "index": i, "total": len(pending), "clips": len(texts)})
            try:
                got = narrator.choose(routine)
            except AudiogenError as e:
                out[src] = e
                continue
            engine, voice_id, req, notes = got
            narration = Narration(engine.name, voice_id, {}, {}, notes=notes)
            data: dict[str, object] = {}
            for text in texts:
                key = narrator.key(engine, voice_id, req, text)
                narration.keys[text] = key
                if key not in shared and narrator.cache.has(key):  # the client's cache: sent once
                    shared[key] = client.scatter(narrator.cache.load(key), hash=False)
                    narration.cache_hits += 1
                    progress("clip", {"hit": True})
                elif key not in shared:
                    shared[key] = client.submit(synth_clip, engine.name, req, text, key=f"clip-{key}",
                                                retries=RETRIES, pure=False)
                    submitted.add(key)
                    narration.synthesized += 1
                else:
                    narration.cache_hits += 1
                data[text] = shared[key]
            tried.append((src, routine, narration, data))
        pending = []
        futures = {shared[k]: k for k in submitted}
        submitted = set()
        failed: dict[str, BaseException] = {}
        for fut in as_completed(list(futures)):
            key = futures[fut]
            try:
                narrator.cache.put(key, fut.result())
                progress("clip", {"hit": False})
            except AudiogenError as e:
                failed[key] = e
            except Exception as e:  # noqa: BLE001 - a worker-side failure that is not ours
                failed[key] = EngineError(f"a cluster worker could not narrate: {e}")
        for src, routine, narration, data in tried:
            errors = [failed[narration.keys[t]] for t in data if narration.keys[t] in failed]
            if not errors:
                for t in data:
                    narration.lengths[t] = narrator.cache.length_ms(narration.keys[t])
                out[src] = (narration, data)
                continue
            explicit = (narrator.engine_override or routine.voice.engine) != "auto"
            if explicit or not isinstance(errors[0], EngineError):
                out[src] = errors[0]
            else:  # auto: that engine is out for this build; narrate the routine again with the next one
                narrator.mark_down(narration.engine, errors[0].message)
                pending.append((src, routine))
        for key in failed:
            shared.pop(key, None)
    return out


def render_on_cluster(client, todo: list, narrations: dict, prepare, complete, fail,
                      progress: Callable[[str, dict], None]) -> None:
    """Stage 2: one render task per session; the client writes every MP3 atomically as it arrives."""
    from distributed import as_completed

    from .atomic import write_bytes

    futures = {}
    for job in todo:
        got = narrations.get(job.source)
        if isinstance(got, AudiogenError) or got is None:
            fail(job, got)
            continue
        narration, data = got
        try:
            prep = prepare(job, narration)
        except AudiogenError as e:
            fail(job, e)
            continue
        audio = replace(prep.audio, clips=None)
        clips = {t: data[t] for t in {e.text for e in prep.plan.events if e.kind == "speech"}}
        fut = client.submit(render_remote, audio, clips, retries=RETRIES, pure=False)
        futures[fut] = (job, prep, narration)
    done = 0
    for fut in as_completed(list(futures)):
        job, prep, narration = futures[fut]
        try:
            data, lufs = fut.result()
            write_bytes(job.result.mp3, data)
            complete(job, prep, narration, lufs)
        except AudiogenError as e:
            fail(job, e)
        except Exception as e:  # noqa: BLE001 - a worker-side failure that is not ours
            fail(job, OutputError(f"a cluster worker could not render {job.result.mp3.name}: {e}"))
        done += 1
        progress("session", {"done": done, "total": len(futures), "result": job.result})



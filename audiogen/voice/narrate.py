"""Choosing an engine for a routine and getting every phrase as a cached clip."""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.routine.errors import EngineError, EngineUnavailable
from audiogen.routine.model import Routine
from audiogen.routine.voicing import by_voice
from audiogen.voice.cache import ClipCache, clip_key
from audiogen.voice.clips import prepare_speech
from audiogen.voice.engines import ENGINES, OFFLINE_PREFERENCE, Engine, VoiceRequest, get_engine
from audiogen.voice.pool import ProcessPool, default_workers
from audiogen.voice.privacy import offline_mode
from audiogen.voice.pronounce import apply as pronounce
from audiogen.voice.pronounce import phoneme_rules
from audiogen.voice.threads import run_threads

#: Fewest missing clips worth starting worker processes for, unless the engine says otherwise
#: (`pool_min_clips`, and `pool_min_chars` of text); a running pool is used for any batch. Starting two
#: workers (forkserver, model loaded) takes ~0.65 s on the 2-core reference machine; measured break-even
#: for Piper is ~35 s of speech (~500 characters, 3-4 typical phrases), for espeak ~8 clips (there the
#: pool spreads the ~60-80 ms a clip of resampling and levelling, not espeak itself).
POOL_MIN_CLIPS = 8


@dataclass
class Narration:
    """Which engine and voice narrated a routine, and where each phrase's clip is."""

    engine: str
    voice: str
    keys: dict[str, str]  # text -> cache key
    lengths: dict[str, int]  # text -> ms
    synthesized: int = 0
    cache_hits: int = 0
    notes: list[str] = field(default_factory=list)
    #: Who spoke the clips of the routine's other voices (a step's or the phrases' `voice:`):
    #: voice label -> (engine, voice id).
    voices: dict[str, tuple[str, str]] = field(default_factory=dict)

    def merge(self, other: Narration, names: dict[str, str], label: str) -> None:
        """Take in `other` (the clips of one other voice, by plain text) under their clip `names`."""
        for name, text in names.items():
            self.keys[name], self.lengths[name] = other.keys[text], other.lengths[text]
        self.synthesized += other.synthesized
        self.cache_hits += other.cache_hits
        self.notes += [n for n in other.notes if n not in self.notes]
        self.voices[label] = (other.engine, other.voice)


def voice_request(routine: Routine) -> VoiceRequest:
    return VoiceRequest(language=routine.language, name=routine.voice.name, speed=routine.voice.speed)


@dataclass
class Batch:
    """One round of synthesis: how many clips one engine made, how (serial, processes, threads), how fast."""

    engine: str
    mode: str  # serial | processes | threads
    clips: int
    speech_s: float = 0.0
    wall_s: float = 0.0
    workers: int = 1


@dataclass
class _Group:
    """Routines that one engine will narrate, and the clips they miss (key -> (key, text, voice))."""

    engine: Engine
    missing: dict[str, tuple[str, str, VoiceRequest]] = field(default_factory=dict)
    routines: list[tuple[Routine, list[str]]] = field(default_factory=list)


def _no_engine(routine: Routine, skipped: list[str]) -> EngineUnavailable:
    return EngineUnavailable(
        f"no engine can narrate language {routine.language!r}: " + "; ".join(skipped),
        hint="install an offline voice or check the language code (audiogen voices)",
    )


class Narrator:
    """Resolves `auto` (gTTS, then offline voices) and fills the clip cache.

    One Narrator serves a whole batch build: once gTTS has failed to answer, later routines go
    straight to the offline voice instead of waiting for the network again. Missing clips are
    synthesised together: Piper and espeak on a pool of worker processes (`workers`, default
    `AUDIOGEN_WORKERS` or the cores; started lazily, reused for the whole build), gTTS on a few threads
    under a shared rate limit. `prefetch` narrates several routines' missing clips in one batch. Close the
    Narrator (or use it as a context manager) to stop the workers.
    """

    def __init__(
        self,
        cache: ClipCache,
        *,
        engine: str | None = None,
        offline: bool | None = None,
        notify: Callable[[str], None] | None = None,
        workers: int | None = None,
    ) -> None:
        self.cache = cache
        self.engine_override = engine
        self.offline = offline_mode() if offline is None else offline
        self.notify = notify or (lambda msg: None)
        #: Processes for the offline engines (1: everything in this process).
        self.workers = max(1, workers) if workers is not None else default_workers()
        #: Every round of synthesis so far (what `scripts/bench.py --synth` reports).
        self.batches: list[Batch] = []
        self._down: dict[str, str] = {}  # engine -> why it failed in this process
        self._told: set[str] = set()
        self._pools: dict[str, ProcessPool] = {}
        self._answered: set[str] = set()  # network engines that answered once: no single-phrase probe
        self._fresh: dict[str, bool] = {}  # key -> reported: clips `prefetch` made, not yet claimed by narrate

    # -- lifetime ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop and reap the worker processes, and the fork server and resource tracker multiprocessing
        started for them, so none outlives the build (safe to call twice; a later narration starts new ones)."""
        from audiogen.voice.pool import release_helpers

        pools, self._pools = list(self._pools.values()), {}
        try:
            for pool in pools:
                pool.close()
        finally:
            release_helpers()  # also those of pools dropped earlier (a lost worker, Ctrl-C)

    def __enter__(self) -> Narrator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- choosing an engine --------------------------------------------------------------------------
    def candidates(self, routine: Routine) -> list[str]:
        return self.candidates_for(self.engine_override or routine.voice.engine)

    @staticmethod
    def candidates_for(choice: str) -> list[str]:
        """The engines a routine's `voice.engine` choice tries, in order."""
        if choice != "auto":
            return [choice]
        return ["gtts"] + OFFLINE_PREFERENCE  # offline, gtts is skipped with a note saying so

    def _explicit(self, routine: Routine) -> bool:
        return len(self.candidates(routine)) == 1 and (self.engine_override or routine.voice.engine) != "auto"

    def usable(self, name: str, voice: VoiceRequest, explicit: bool) -> tuple[Engine, str, VoiceRequest] | str:
        """(engine, voice id, the request it will get), or the reason it cannot narrate this routine."""
        if name == "gtts" and self.offline:
            reason = "offline mode (--offline / AUDIOGEN_OFFLINE=1) never contacts the network"
        elif name in self._down:
            reason = self._down[name]
        else:
            try:
                engine = get_engine(name)
                reason = engine.unavailable_reason()
                if reason is None:
                    try:
                        return engine, engine.resolve_voice(voice), voice
                    except EngineUnavailable:
                        if explicit or not voice.name:
                            raise
                        # under auto, `name` is meant for another engine (a gTTS tld, say): use this
                        # engine's default voice for the language instead
                        plain = replace(voice, name=None)
                        return engine, engine.resolve_voice(plain), plain
            except EngineUnavailable as e:
                if explicit:
                    raise EngineUnavailable(f"engine {name!r} cannot narrate: {e.message}", hint=e.hint) from None
                reason = e.message
        if explicit:
            raise EngineUnavailable(f"engine {name!r} is not available: {reason}",
                                    hint="use engine: auto, or another engine (audiogen voices lists them)")
        return reason

    def options(self, routine: Routine, *, explicit: bool | None = None, on_error: str = "raise"
                ) -> Iterator[tuple[str, tuple[Engine, str, VoiceRequest] | str]]:
        """Each engine the routine's choice tries, in order, with (engine, voice id, request) when it can
        narrate the routine, or the reason it cannot. The one place the choice is walked: `narrate`,
        `choose`, `prefetch` and `cached_lengths` differ only in what they do with each option.

        An explicit engine (the routine's or --engine) that cannot work raises EngineUnavailable, and an
        engine that fails while being asked raises EngineError; `on_error` "skip" passes over such an
        engine instead, "stop" ends the walk there."""
        voice = voice_request(routine)
        explicit = self._explicit(routine) if explicit is None else explicit
        phonemes = phoneme_rules(routine.pronounce)
        for name in self.candidates(routine):
            if phonemes and (why := self._no_phonemes(name, phonemes)):
                if explicit:
                    raise EngineUnavailable(f"engine {name!r} cannot narrate this routine: {why}",
                                            hint="use engine espeak or piper, or a respelling instead of [[...]]")
                yield name, why
                continue
            try:
                got = self.usable(name, voice, explicit)
            except EngineError:
                if on_error == "raise":
                    raise
                if on_error == "stop":
                    return
                continue
            yield name, got

    @staticmethod
    def _no_phonemes(name: str, keys: list[str]) -> str | None:
        """Why engine `name` cannot speak the routine's `[[phoneme]]` pronounce: entries (None: it can)."""
        try:
            engine = get_engine(name)
        except EngineUnavailable:
            return None  # usable() says why
        if getattr(engine, "phonemes", False):
            return None
        return f"it cannot speak phonemes (pronounce: {keys[0]!r} is written [[...]])"

    def key(self, engine: Engine, voice_id: str, voice: VoiceRequest, text: str) -> str:
        return clip_key(engine.name, engine.version(), voice_id, voice.language, voice.speed, text)

    def cached_lengths(self, routine: Routine, texts: list[str]) -> dict[str, int]:
        """Real lengths of the clips already cached for the engine `auto` would try first (no synthesis),
        by clip name (a text in another voice than the routine's is looked up in that voice)."""
        out: dict[str, int] = {}
        for voice_routine, _, names in by_voice(routine, texts):
            lengths = self._cached_lengths(voice_routine, list(dict.fromkeys(names.values())))
            out.update({name: lengths[text] for name, text in names.items() if text in lengths})
        return out

    def _cached_lengths(self, routine: Routine, texts: list[str]) -> dict[str, int]:
        for _, got in self.options(routine, explicit=False, on_error="skip"):
            if isinstance(got, str):
                continue
            engine, voice_id, req = got
            out = {}
            for t in texts:
                ms = self.cache.length_ms(self.key(engine, voice_id, req, pronounce(t, routine.pronounce)))
                if ms is not None:
                    out[t] = ms
            return out
        return {}

    # -- narrating -----------------------------------------------------------------------------------
    def narrate(self, routine: Routine, texts: list[str],
                on_clip: Callable[[str, bool], None] | None = None) -> Narration:
        """Make sure every clip has a cached clip: the routine's voice by one engine for the whole routine,
        each other voice (a step's or the phrases' `voice:`) by the engine its own choice picks."""
        groups = by_voice(routine, texts)
        main_routine, _, main = groups[0]
        narration = self._narrate(main_routine, list(main.values()), on_clip)
        for voice_routine, label, names in groups[1:]:
            other = self._narrate(voice_routine, list(dict.fromkeys(names.values())), on_clip)
            narration.merge(other, names, label)
        return narration

    def _narrate(self, routine: Routine, texts: list[str],
                 on_clip: Callable[[str, bool], None] | None = None) -> Narration:
        explicit = self._explicit(routine)
        while True:  # an engine that fails is marked down, so the next pick is the next engine (or none)
            engine, voice_id, req, skipped = self._pick(routine)
            try:
                narration = self._fill(engine, voice_id, req, texts, on_clip, routine.pronounce)
            except EngineError as e:  # unreachable, rate-limited, refused: auto tries the next engine
                if explicit:
                    raise
                self.mark_down(engine.name, e.message)
                continue
            if not explicit:
                narration.notes += self._fallback_note(engine.name, voice_id, skipped)
            return narration

    def choose(self, routine: Routine) -> tuple[Engine, str, VoiceRequest, list[str]]:
        """(engine, voice id, request, notes): the first engine that can narrate `routine`, without
        synthesising (a cluster build synthesises elsewhere and reports failures with `mark_down`)."""
        engine, voice_id, req, skipped = self._pick(routine)
        notes = [] if self._explicit(routine) else self._fallback_note(engine.name, voice_id, skipped)
        return engine, voice_id, req, notes

    def _pick(self, routine: Routine) -> tuple[Engine, str, VoiceRequest, list[str]]:
        """The first engine of the routine's choice that can narrate it, and why each before it cannot."""
        skipped: list[str] = []
        for name, got in self.options(routine):
            if isinstance(got, str):
                skipped.append(f"{name}: {got}")
                continue
            return (*got, skipped)
        raise _no_engine(routine, skipped)

    def mark_down(self, engine: str, reason: str) -> None:
        """`engine` failed in this build: `auto` skips it from now on, saying why."""
        self._down[engine] = reason

    def _fallback_note(self, engine: str, voice_id: str, skipped: list[str]) -> list[str]:
        """The note saying which engine narrated and why the ones before it did not (printed once)."""
        if not skipped:
            return []
        note = f"narrated by {engine} ({voice_id}) because " + "; ".join(skipped)
        if note not in self._told:
            self._told.add(note)
            self.notify(note)
        return [note]

    def prefetch(self, routines: Iterable[tuple[Routine, list[str]]],
                 on_clip: Callable[[str, bool], None] | None = None) -> int:
        """Synthesise the missing clips of several routines in one batch per offline engine; returns how many.

        For speed only: the worker pool stays busy across routine boundaries and a phrase shared by
        routines is made once. Each routine still goes through `narrate` afterwards, which reports
        errors, fallbacks and per-routine counts exactly as without prefetching (the clips made here
        count as synthesised by the first routine that uses them). `on_clip(text, False)` is called
        for each clip made here. Network engines (gTTS) are left to `narrate`, routine by routine, so
        that a failure costs the same requests and sends the same routines to the fallback as before;
        a failure here only ends that engine's batch (narrate meets it again, in routine order).
        """
        def done(key: str, text: str) -> None:
            self._fresh[key] = on_clip is not None
            if on_clip is not None:
                on_clip(text, False)

        groups: dict[str, _Group] = {}
        routines = [(voice_routine, list(dict.fromkeys(names.values())))
                    for routine, texts in routines for voice_routine, _, names in by_voice(routine, texts)]
        for routine, texts in routines:
            for name, got in self.options(routine, on_error="stop"):  # narrate() reports the error
                if isinstance(got, str):
                    continue
                engine, voice_id, req = got
                if not engine.offline:
                    break  # the network engine comes first for this routine: narrate() asks it
                group = groups.setdefault(name, _Group(engine))
                group.routines.append((routine, texts))
                for text in texts:
                    spoken = pronounce(text, routine.pronounce)
                    key = self.key(engine, voice_id, req, spoken)
                    if key not in group.missing and key not in self._fresh and not self.cache.has(key):
                        group.missing[key] = (key, spoken, req)
                break
        made = 0
        for group in groups.values():
            if not group.missing:
                continue
            before = self.synthesized_total()
            try:
                self._synthesize(group.engine, list(group.missing.values()), done)
            except EngineError:
                pass  # the routines' own narrate() calls meet it again and report it as before
            made += self.synthesized_total() - before
        return made

    def synthesized_total(self) -> int:
        """Clips synthesised by this Narrator so far (all engines, all batches)."""
        return sum(b.clips for b in self.batches)

    def _fill(self, engine: Engine, voice_id: str, voice: VoiceRequest, texts: list[str],
              on_clip: Callable[[str, bool], None] | None, rules: dict[str, str] | None = None) -> Narration:
        n = Narration(engine.name, voice_id, {}, {})
        spoken = {text: pronounce(text, rules) for text in texts}  # what the engine says (pronounce: applied)
        keys = {text: self.key(engine, voice_id, voice, spoken[text]) for text in texts}
        missing = list({key: (key, spoken[text], voice) for text, key in keys.items()
                        if key not in self._fresh and not self.cache.has(key)}.values())
        written = {key: text for text, key in keys.items()}
        made: set[str] = set()
        if missing:
            def done(key: str, text: str) -> None:
                made.add(key)
                if on_clip:
                    on_clip(written.get(key, text), False)

            self._synthesize(engine, missing, done)
        for text in texts:
            key = keys[text]
            if key in made:  # synthesised just now (and reported)
                made.discard(key)
                n.synthesized += 1
            elif key in self._fresh:  # synthesised by prefetch: the first routine using it claims it
                reported = self._fresh.pop(key)
                n.synthesized += 1
                if on_clip and not reported:
                    on_clip(text, False)
            else:
                n.cache_hits += 1
                if on_clip:
                    on_clip(text, True)
            n.keys[text], n.lengths[text] = key, self.cache.length_ms(key)
        return n

    # -- synthesis -----------------------------------------------------------------------------------
    def _synthesize(self, engine: Engine, items: list[tuple[str, str, VoiceRequest]],
                    done: Callable[[str, str], None]) -> None:
        """Synthesise (key, text, voice) items into the cache, in parallel where the engine allows."""
        t0 = time.perf_counter()
        batch = Batch(engine.name, "serial", 0)
        self.batches.append(batch)

        def store(i: int, samples: np.ndarray) -> None:
            key, text, _ = items[i]
            self.cache.put(key, samples)
            batch.clips += 1
            batch.speech_s += len(samples) / INTERNAL_RATE
            batch.wall_s = time.perf_counter() - t0
            done(key, text)

        def one(item: tuple[str, str, VoiceRequest]) -> np.ndarray:
            clip = engine.synthesize(item[1], item[2])
            return prepare_speech(clip.samples, clip.rate)

        mode = getattr(engine, "parallel", None)
        pool = self._pool_for(engine, [text for _, text, _ in items]) if mode == "processes" else None
        try:
            if pool is not None:
                batch.mode, batch.workers = "processes", pool.size
                pool.run([(text, voice) for _, text, voice in items], store)
            elif mode == "threads" and self.workers > 1 and len(items) > 1:
                first = 0
                if engine.name not in self._answered:
                    # one phrase alone first: an unreachable service costs one request, not one per thread
                    store(0, one(items[0]))
                    self._answered.add(engine.name)
                    first = 1
                batch.mode = "threads"
                batch.workers = max(1, int(getattr(engine, "max_concurrency", 3)))
                run_threads(one, items[first:], batch.workers, lambda i, s: store(first + i, s))
            else:
                for i, item in enumerate(items):
                    store(i, one(item))
            if not engine.offline:
                self._answered.add(engine.name)
        finally:
            batch.wall_s = time.perf_counter() - t0
            if pool is not None and not pool.running:  # it lost a worker (or was interrupted): forget it
                self._pools.pop(engine.name, None)

    def _pool_for(self, engine: Engine, texts: list[str]) -> ProcessPool | None:
        """The engine's worker pool when `texts` are worth it (None: narrate in this process).

        A pool that is already running is used for any batch of two or more. Starting one is worth it
        from the engine's `pool_min_clips` phrases and `pool_min_chars` characters on (start-up costs
        about as much as that much speech on one core; see POOL_MIN_CLIPS). Workers recreate the engine
        from its registry entry, so that entry must pickle (a module-level function or class).
        """
        if self.workers < 2 or len(texts) < 2 or multiprocessing.current_process().daemon:
            return None  # (a daemonic process, a pool's worker say, may not start processes: no nesting)
        pool = self._pools.get(engine.name)
        factory = ENGINES.get(engine.name)
        if pool is not None and pool.factory is factory and pool.running:
            return pool
        if pool is not None:  # its engine was re-registered, or it lost a worker: start afresh
            self._pools.pop(engine.name).close()
        if (len(texts) < int(getattr(engine, "pool_min_clips", POOL_MIN_CLIPS))
                or sum(map(len, texts)) < int(getattr(engine, "pool_min_chars", 0)) or factory is None):
            return None
        try:
            pickle.dumps(factory)
        except Exception:  # noqa: BLE001 - a lambda or local function: no pool, narrate here
            return None
        pool = ProcessPool(engine.name, factory, min(self.workers, len(texts)))
        self._pools[engine.name] = pool
        return pool

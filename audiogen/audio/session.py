"""Rendering one session: its cue and bed sounds, its clips, and the mix levelled into the encoder.

`SessionAudio` is everything a render needs as plain data, so it can travel to a Dask worker;
`render_audio` turns it into an MP3 file (untagged: tags and chapters are publish/'s job).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiogen.audio import levelmemo, sounds, tones
from audiogen.audio.checks import Finding, bed_under_speech, session_checks
from audiogen.audio.encode import encode_mp3
from audiogen.audio.leveling import PEAK_CEILING_DB, LevelPlan, level_session, session_energies
from audiogen.audio.mix import Bed, mix_blocks, mixdown, ms_to_samples
from audiogen.dsp.ffmpeg import INTERNAL_RATE, samples_to_ms
from audiogen.dsp.limiter import LimiterStats, limit_stream
from audiogen.dsp.loudness import LoudnessMeter, metered
from audiogen.plan.planner import SPEECH_LEAD_MS, Event, Plan, sound_refs
from audiogen.routine.library import OutputSettings
from audiogen.routine.model import Routine
from audiogen.routine.soundref import is_builtin, resolve_path
from audiogen.voice.cache import ClipCache
from audiogen.voice.clips import SPEECH_LUFS
from audiogen.voice.tempo import stretch_clip, tempo_key

#: Cue sounds peak here, under the voice's limited peaks.
CUE_PEAK = 10 ** (-10 / 20)


# -- sounds ---------------------------------------------------------------------------------------
def load_cue(ref: str, base_dir: Path | None) -> np.ndarray:
    """A cue (built-in name or file) as float32 samples at the level a session plays it."""
    if tones.is_tone(ref):  # a breathing step's pace tone: made to its phase's length, at its own soft level
        return tones.tone(ref)
    x = sounds.cue(ref) if is_builtin(ref, "cue") else sounds.load_sound_file(resolve_path(ref, base_dir))
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (CUE_PEAK / peak) if peak > 0 else x


def load_bed(routine: Routine, loudness_mode: str = "speech") -> Bed | None:
    """The routine's background as a loop with its levels and fades (None: no background).

    In speech mode the loop is levelled by loudness, like the speech clips, so `volume` is heard as
    written; programme mode keeps the loop's RMS reference, as before that mode had a name."""
    bg = routine.background
    if bg is None:
        return None
    ref = bg.track
    if is_builtin(ref, "ambience"):  # generated to loop exactly; in speech mode a copy of our own, scaled in place
        loop = sounds.ambience_copy(ref) if loudness_mode == "speech" else sounds.ambience(ref)
    else:  # a user's file: crossfade its seam
        raw = sounds.load_sound_file(resolve_path(ref, routine.base_dir))
        loop = sounds.make_loop(sounds.normalize_rms(raw, SPEECH_LUFS))
    if loudness_mode == "speech":
        loop = at_voice_level(loop, in_place=True)
    return Bed(loop, bg.volume, bg.duck, bg.fade_in, bg.fade_out)


def at_voice_level(loop: np.ndarray, in_place: bool = False) -> np.ndarray:
    """The loop scaled to the loudness speech clips are levelled to (SPEECH_LUFS, K-weighted like them),
    so `background.volume: -20 dB` puts the bed 20 dB under the voice as a loudness meter hears it (by RMS
    a rain bed measured about 3 LU louder than written); peaks stay under 0.98. `in_place`: `loop` (float32,
    writable) may be scaled where it is."""
    meter = LoudnessMeter()
    reps = max(1, -(-4 * INTERNAL_RATE // max(1, len(loop))))  # at least 4 s to gate
    tiled = np.tile(loop, reps) if reps > 1 else loop  # (only read: a loop long enough is not copied)
    for i in range(0, len(tiled), 5 * INTERNAL_RATE):  # in blocks: a 30 s loop at once costs 40 MB of transforms
        meter.add(tiled[i : i + 5 * INTERNAL_RATE])
    lufs = meter.integrated()
    if not np.isfinite(lufs):
        return loop
    scale = np.float32(10 ** ((SPEECH_LUFS - lufs) / 20))
    if in_place and loop.dtype == np.float32 and loop.flags.writeable:  # `in_place`: the caller's to overwrite
        y = loop
        y *= scale
    else:
        y = np.asarray(loop, dtype=np.float32) * scale
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return y * np.float32(0.98 / peak) if peak > 0.98 else y


def cue_samples(routine: Routine) -> dict[str, np.ndarray]:
    """Every cue the routine plays, by reference, as the samples a session plays."""
    return {ref: load_cue(ref, routine.base_dir) for ref in sound_refs(routine)}


def cue_ms(cues: dict[str, np.ndarray]) -> Callable[[str], int]:
    """The planner's view of `cues`: reference -> length in ms."""
    return lambda s: samples_to_ms(len(cues[s]))


# -- clips ----------------------------------------------------------------------------------------
class CachedClips:
    """Speech clips by text, read from the clip cache when first needed (memory stays bounded)."""

    def __init__(self, cache: ClipCache, keys: dict[str, str]) -> None:
        self.cache, self.keys = cache, keys
        self._short: dict[str, np.ndarray] = {}

    def __getitem__(self, text: str) -> np.ndarray:
        if text in self._short:
            return self._short[text]
        x = self.cache.load(self.keys[text])
        if len(x) < INTERNAL_RATE * 3 and len(self._short) < 64:  # counts and reminders repeat
            self._short[text] = x
        return x

    def fitted(self, text: str, tempo: float) -> np.ndarray:
        """The clip `tempo` times faster, made once and kept in the clip cache under its own key."""
        key = tempo_key(self.keys[text], tempo)
        if self.cache.has(key):
            return self.cache.load(key)
        x = stretch_clip(self[text], tempo)
        self.cache.put(key, x)
        return x


# -- rendering ------------------------------------------------------------------------------------
@dataclass
class SessionAudio:
    """Everything needed to render one session, as plain data: it can travel to a Dask worker."""

    plan: Plan
    clips: Any  # text -> int16 samples (a dict, or CachedClips)
    cues: dict[str, np.ndarray]  # name -> float32 samples
    bed: Bed | None
    settings: OutputSettings

    def load(self, event: Event) -> np.ndarray:
        if event.kind != "speech":
            return self.cues[event.sound]
        if event.tempo != 1.0:  # a `fit: true` step: faster, pitch kept, no longer than its planned slot
            return fitted_clip(self.clips, event.clip, event.tempo)[: ms_to_samples(event.length_ms)]
        x = self.clips[event.clip].astype(np.float32)
        x /= np.float32(32768.0)  # in place: the same samples as a division into a new array
        if event.role in ON_TIME_ROLES:
            return heard_at(x, ms_to_samples(SPEECH_LEAD_MS))
        return x


#: Speech heard on a planned instant (countdown numbers, breathing words): the planner starts the event
#: SPEECH_LEAD_MS early, and the clip is shifted so its onset falls exactly that far in.
ON_TIME_ROLES = ("countdown", "breathe")
#: A word's onset: its first sample within this many dB of its peak (a clip's trimmed edge varies by the
#: sound it starts with: 0-30 ms of breath or fricative before the word is heard).
ONSET_DB = -40.0


def heard_at(x: np.ndarray, lead: int) -> np.ndarray:
    """`x` shifted so its onset (first sample within ONSET_DB of its peak) is at sample `lead`."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0:
        return x
    onset = int(np.argmax(np.abs(x) > peak * 10 ** (ONSET_DB / 20)))
    if onset >= lead:
        return x[onset - lead :]
    return np.concatenate([np.zeros(lead - onset, dtype=x.dtype), x])


def fitted_clip(clips: Any, text: str, tempo: float) -> np.ndarray:
    """The clip of `text` played `tempo` times faster, float32: from the clip cache when the clips come
    from it (stretched once, then kept there), else stretched here."""
    if isinstance(clips, CachedClips):
        return clips.fitted(text, tempo).astype(np.float32) / 32768.0
    return stretch_clip(np.asarray(clips[text]), tempo).astype(np.float32) / 32768.0


@dataclass(frozen=True)
class Loudness:
    """What a render wrote, in LUFS: `target` is measured as the target is (over the speech in speech mode,
    the whole mix in programme mode, or metered whole when unlevelled), `programme` over the whole mix."""

    target: float | None
    programme: float | None
    gain_db: float = 0.0  # on the whole mix
    bed_gain_db: float = 0.0  # on the bed, besides
    #: what the sound checks found (audio.checks), in time order; the limiter's deepest cut in dB
    checks: tuple[Finding, ...] = ()
    limiter_db: float = 0.0


def give_back_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim), where there is such a call.

    The leveller's session-long arrays are freed before the encode, but glibc keeps the pages they were on
    for reuse, and the encode's blocks do not fit in their holes: a 12-hour session's resident memory then
    held both. Elsewhere (macOS, musl) nothing is done."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc's, without a search
    except (OSError, AttributeError):
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def _lufs(x: float | None) -> float | None:
    return round(float(x), 2) if x is not None and np.isfinite(x) else None


class Interrupted(KeyboardInterrupt):
    """A render stopped because the build was interrupted (the encoder is killed, the temp file removed)."""


def _unless(cancel: threading.Event | None, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    for block in blocks:
        if cancel is not None and cancel.is_set():
            raise Interrupted("stopped")
        yield block


def render_audio(audio: SessionAudio, mp3_path: Path, cancel: threading.Event | None = None) -> Loudness:
    """Mix, normalise and encode a session into `mp3_path` (not atomic: callers give a temp path).

    The gains are solved first (`leveling.level_session`: the voice alone, the bed from its loop, and
    the stretches the limiter works on), then the session is mixed once, straight into the encoder.
    Returns the loudness written: the leveller's predictions, or, unlevelled, what was metered on the way.
    """
    plan, settings, bed = audio.plan, audio.settings, audio.bed
    ceiling = 10 ** (PEAK_CEILING_DB / 20)
    # a rebuild of the same mix reads the leveller's answer back instead of measuring again (levelmemo.py)
    memo = levelmemo.level_key(audio, PEAK_CEILING_DB)
    kept = levelmemo.recall(memo)
    if kept is not None:
        level, early = kept
        give_back_memory()  # what planning and the bed's levelling left free (a 30 s loop's transforms)
    else:
        level = LevelPlan()
        if settings.loudness is not None:
            level = level_session(plan, audio.load, bed, settings.loudness, mode=settings.loudness_mode)
        # The bed check needs the per-100-ms energies (the leveller's, or unlevelled the voice alone once more;
        # the bed is analytic): taken now, so they are let go before the encode (7 MB for 12 hours)
        energies = level.energies
        if energies is None and bed is not None:
            energies = session_energies(plan, audio.load, bed)
        early = (bed_under_speech(plan, energies[0], energies[1], level.bed_gain_db, settings.loudness_mode)
                 if bed is not None else [])
        level.energies = energies = None
        levelmemo.remember(memo, level, early)
        give_back_memory()
    # the limiter turns down the peaks the gain pushes over the ceiling (a bed swell under a word)
    stats = LimiterStats()
    mix = _unless(cancel, limit_stream(mix_blocks(plan, audio.load, bed, gain_db=level.gain_db,
                                                  bed_gain_db=level.bed_gain_db), ceiling, stats=stats))
    # The leveller's prediction is what was written (tests hold it to metering the limited mix); metering
    # again would cost CPU the encoder, on the other core, measurably loses to. Unlevelled: meter it.
    final = LoudnessMeter() if level.predicted is None else None
    encode_mp3(mix if final is None else metered(mix, final), mp3_path, bitrate=settings.bitrate,
               channels=settings.channels, sample_rate=settings.sample_rate)
    checks = tuple(session_checks(plan, has_bed=bed is not None, bed_gain_db=level.bed_gain_db,
                                  loudness_mode=settings.loudness_mode, limiter_stats=stats, earlier=early))
    if final is not None:
        return Loudness(_lufs(final.integrated()), _lufs(final.integrated()), checks=checks,
                        limiter_db=round(stats.max_reduction_db, 2))
    return Loudness(_lufs(level.predicted), _lufs(level.programme), float(level.gain_db), float(level.bed_gain_db),
                    checks=checks, limiter_db=round(stats.max_reduction_db, 2))


def render_bytes(audio: SessionAudio) -> tuple[bytes, Loudness]:
    """`render_audio` into memory: what a cluster worker sends back (it needs no shared disk)."""
    with tempfile.TemporaryDirectory(prefix="audiogen-") as tmp:
        path = Path(tmp) / "session.mp3"
        lufs = render_audio(audio, path)
        return path.read_bytes(), lufs


# -- several outputs from one render --------------------------------------------------------------
@dataclass
class Outputs:
    """Where one render goes: a file per format, optionally one file per chapter, optionally stems.

    All paths are temp paths the caller puts in place (atomically) once the render succeeded."""

    formats: dict[str, Path]  # "mp3" | "m4b" | "opus" -> path
    chapters: list[tuple[str, int, int]]  # (title, start_ms, end_ms): an M4B's chapters
    split: tuple[str, list[Path], list[int]] | None = None  # (format, paths, start sample of each)
    stems: dict[str, Path] | None = None  # "voice" | "bed" -> path (32-bit float WAV)


def _parts_and_mix(parts: Iterable[tuple[np.ndarray, np.ndarray | None]], gain_db: float, bed_gain_db: float,
                   ceiling: float, meter: LoudnessMeter | None, stems: bool) -> Iterator[dict[str, np.ndarray]]:
    """The limited mix block by block, with (when `stems`) the voice and the bed at the gains the mix has them:
    voice + bed is the mix before limiting. The limiter delays its output a little, so the stems are
    queued until the mix has caught up with them: every item's streams cover the same samples."""
    from collections import deque

    g = np.float32(10 ** (gain_db / 20))
    bg = np.float32(10 ** (bed_gain_db / 20))
    held: deque[tuple[np.ndarray, np.ndarray]] = deque()

    def unlimited() -> Iterator[np.ndarray]:
        for voice, under in parts:
            if stems:
                v = voice * g
                b = under * (bg * g) if under is not None else np.zeros_like(v)
                held.append((v, b))
            yield mixdown(voice, under, gain_db, bed_gain_db)

    mix = limit_stream(unlimited(), ceiling)
    if meter is not None:
        mix = metered(mix, meter)
    pending_v: list[np.ndarray] = []
    pending_b: list[np.ndarray] = []
    for block in mix:
        if not stems:
            yield {"mix": block}
            continue
        need = len(block)
        have = sum(len(x) for x in pending_v)
        while have < need:
            v, b = held.popleft()
            pending_v.append(v)
            pending_b.append(b)
            have += len(v)
        v, b = np.concatenate(pending_v), np.concatenate(pending_b)
        pending_v, pending_b = [v[need:]], [b[need:]]
        yield {"mix": block, "voice": v[:need], "bed": b[:need]}


def render_outputs(audio: SessionAudio, outputs: Outputs, cancel: threading.Event | None = None) -> Loudness:
    """`render_audio` into several files at once: the session is mixed and limited once and every block is
    fed to each format's encoder (and to the per-chapter and stem encoders); memory stays at a few blocks."""
    from audiogen.audio.encode import PcmEncoder, SplitEncoder, encode_tee
    from audiogen.audio.mix import mix_parts

    plan, settings, bed = audio.plan, audio.settings, audio.bed
    ceiling = 10 ** (PEAK_CEILING_DB / 20)
    kept = levelmemo.recall(levelmemo.level_key(audio, PEAK_CEILING_DB))  # what render_audio kept, if it did
    level = kept[0] if kept is not None else LevelPlan()
    if kept is None and settings.loudness is not None:
        level = level_session(plan, audio.load, bed, settings.loudness, mode=settings.loudness_mode)
    final = LoudnessMeter() if level.predicted is None else None
    enc = {"bitrate": settings.bitrate, "channels": settings.channels, "sample_rate": settings.sample_rate}
    targets: list[tuple[str, object]] = []
    try:
        for fmt, path in outputs.formats.items():
            targets.append(("mix", PcmEncoder(fmt, path, chapters=outputs.chapters if fmt == "m4b" else None,
                                              **enc)))
        if outputs.split is not None:
            fmt, paths, cuts = outputs.split
            targets.append(("mix", SplitEncoder(fmt, paths, cuts, **enc)))
        for name, path in (outputs.stems or {}).items():
            targets.append((name, PcmEncoder("wav", path, pcm="f32le")))
    except BaseException:
        for _, e in targets:
            e.abort()
        raise
    parts = mix_parts(plan, audio.load, bed)
    streams = _parts_and_mix(parts, level.gain_db, level.bed_gain_db, ceiling, final, bool(outputs.stems))
    encode_tee(_unless(cancel, streams), targets)
    if final is not None:
        return Loudness(_lufs(final.integrated()), _lufs(final.integrated()))
    return Loudness(_lufs(level.predicted), _lufs(level.programme), float(level.gain_db), float(level.bed_gain_db))

"""Built-in ambience beds and cue sounds synthesised with numpy, user sound files, loudness and looping.

Everything here is mono float32 at ``INTERNAL_RATE`` unless another rate is asked for.

Built-in sounds are procedural (no downloads, no bundled binaries) and deterministic (fixed seeds).
They are cached, and the cached arrays are returned *read-only*: copy one (``x.copy()``) before
editing it in place.

Ambiences are synthesised circularly -- FFT-shaped noise, partials with a whole number of cycles
per buffer, envelopes and droplets that wrap around -- so every bed is exactly periodic: tiled end
to end it loops with no seam and without the level dip a crossfade would leave. ``make_loop`` is for
user-supplied beds (``load_sound_file``), which are not periodic.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE, decode_file
from audiogen.routine.errors import SoundError

__all__ = [
    "AMBIENCES",
    "CUES",
    "PEAK_LIMIT",
    "ambience",
    "cue",
    "cue_length_ms",
    "load_sound_file",
    "make_loop",
    "normalize_rms",
]

AMBIENCES: tuple[str, ...] = ("rain", "ocean", "drone", "pink-noise")
CUES: tuple[str, ...] = ("chime", "bell", "tick", "gong")

#: `normalize_rms` never leaves a sample above this (absolute value).
PEAK_LIMIT = 0.98

#: Loop length of each ambience, in seconds.
_AMBIENCE_SECONDS = {"rain": 30, "ocean": 36, "drone": 32, "pink-noise": 24}
#: RMS level every ambience is delivered at; the mixer sets the final bed level.
_AMBIENCE_DBFS = -20.0
#: Length of each cue in ms; `cue(name, rate)` has ceil(ms * rate / 1000) samples.
_CUE_MS = {"chime": 1800, "bell": 2500, "tick": 80, "gong": 4000}
#: Peak level of each cue.
_CUE_PEAK = {"chime": 0.7, "bell": 0.7, "tick": 0.5, "gong": 0.7}
_SEEDS = {"rain": 0x5241494E, "ocean": 0x4F434541, "drone": 0x44524F4E, "pink-noise": 0x50494E4B}
_MIN_RATE = 8000


# --------------------------------------------------------------------------------------------- public


def ambience(name: str, rate: int = INTERNAL_RATE) -> np.ndarray:
    """A built-in background bed: read-only float32 mono in [-1, 1], 24-36 s, exactly periodic.

    Loop it by tiling; every ambience is at -20 dBFS RMS.
    """
    name = _check_name(name, AMBIENCES, "ambience")
    return _cached_ambience(name, _check_rate(rate))


def ambience_copy(name: str, rate: int = INTERNAL_RATE) -> np.ndarray:
    """`ambience(name)` as a writable array of the caller's own, not kept here: what a render scales in
    place and lets go (the kept read-only one would stay beside it, 5 MB, for the whole render)."""
    name = _check_name(name, AMBIENCES, "ambience")
    rate = _check_rate(rate)
    if _cached_ambience.cache_info().currsize:  # kept already (this process used it): a copy of it
        return np.array(_cached_ambience(name, rate))
    try:
        return np.ascontiguousarray(np.load(_stored_ambience_path(name, rate), allow_pickle=False), np.float32)
    except (OSError, ValueError):
        return np.array(_cached_ambience(name, rate))  # made (and stored) once


def cue(name: str, rate: int = INTERNAL_RATE) -> np.ndarray:
    """A built-in cue sound: read-only float32 mono, a few ms of attack, decaying to exact silence."""
    name = _check_name(name, CUES, "cue")
    return _cached_cue(name, _check_rate(rate))


def cue_length_ms(name: str) -> int:
    """Length of ``cue(name)`` in ms (== len(cue(name)) * 1000 // INTERNAL_RATE), without rendering it."""
    return _CUE_MS[_check_name(name, CUES, "cue")]


def load_sound_file(path: str | Path) -> np.ndarray:
    """Decode an audio file ffmpeg reads (mp3, wav, ogg, flac, m4a, ...) to float32 mono at INTERNAL_RATE.

    Raises SoundError naming the path if the file is missing, not a file, undecodable or empty.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise SoundError(f"sound file not found: {p}", hint="check the file name and its folder")
    if not p.is_file():
        raise SoundError(f"sound path is not a file: {p}")
    try:
        pcm = decode_file(str(p))
    except SoundError as exc:
        detail = exc.message.split(f"{p}: ", 1)[-1]
        raise SoundError(f"cannot decode sound file {p}: {detail}",
                         hint="use an audio file ffmpeg can read: mp3, wav, ogg, flac or m4a") from exc
    except OSError as exc:  # ffmpeg could not be started at all
        raise SoundError(f"cannot decode sound file {p}: {exc}") from exc
    if pcm.size == 0:
        raise SoundError(f"sound file contains no audio: {p}")
    return pcm.astype(np.float32) / np.float32(32768.0)


def normalize_rms(x: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale `x` so its RMS is `target_dbfs` (re full scale 1.0), then scale down if a peak exceeds 0.98.

    Returns a new float32 array. Silence (RMS 0) is returned unchanged, since no gain can lift it.
    """
    y = np.asarray(x, dtype=np.float64)
    if y.size == 0:
        return y.astype(np.float32)
    rms = float(np.sqrt(np.mean(np.square(y))))
    if not np.isfinite(rms):
        raise ValueError("normalize_rms: input contains NaN or infinity")
    if rms == 0.0:
        return y.astype(np.float32)
    y = y * (10.0 ** (float(target_dbfs) / 20.0) / rms)
    peak = float(np.max(np.abs(y)))
    if peak > PEAK_LIMIT:
        y *= PEAK_LIMIT / peak
    return y.astype(np.float32)


def make_loop(x: np.ndarray, rate: int = INTERNAL_RATE, crossfade_ms: int = 2000) -> np.ndarray:
    """A buffer that loops seamlessly when tiled end to end: the tail is crossfaded into the head.

    The last `crossfade_ms` (at most a quarter of the input) are mixed into the start with an
    equal-power (sin/cos) crossfade and removed from the end, so the result is that much shorter
    than `x`. Its last sample is followed, in the tiling, by what originally followed it. Returns a
    new float32 array.
    """
    y = np.asarray(x, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError("make_loop expects a mono (1-D) buffer")
    n = y.size
    c = min(int(round(crossfade_ms * rate / 1000.0)), n // 4)
    if c < 1:
        return y.copy()
    out = y[: n - c].copy()
    theta = (np.arange(c, dtype=np.float64) / c) * (np.pi / 2.0)  # 0 at the seam, -> pi/2 at c
    out[:c] = y[:c] * np.sin(theta) + y[n - c:] * np.cos(theta)
    return out


# ------------------------------------------------------------------------------------------- helpers


def _check_name(name: object, valid: tuple[str, ...], kind: str) -> str:
    if isinstance(name, str) and name in valid:
        return name
    listing = f"built-in {kind}s: {', '.join(valid)}"
    close = difflib.get_close_matches(str(name).strip().lower(), valid, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? {listing}" if close else listing
    raise SoundError(f"unknown built-in {kind} {name!r}", hint=hint)


def _check_rate(rate: int) -> int:
    r = int(rate)
    if r < _MIN_RATE:
        raise ValueError(f"sample rate must be at least {_MIN_RATE} Hz, got {rate}")
    return r


def _frozen(x: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(x, dtype=np.float32)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=16)
def _cached_ambience(name: str, rate: int) -> np.ndarray:
    path = _stored_ambience_path(name, rate)
    try:
        return _frozen(np.load(path, allow_pickle=False))
    except (OSError, ValueError):
        pass
    x = _frozen(_generate_ambience(name, rate))
    try:
        from audiogen.routine.atomic import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, ".npy") as tmp, open(tmp, "wb") as f:
            np.save(f, x, allow_pickle=False)
    except Exception:  # a cache that cannot be written only costs the generation again  # noqa: BLE001
        pass
    return x


def _stored_ambience_path(name: str, rate: int) -> Path:
    """Where a generated ambience is kept between runs, beside the clip cache.

    Generating a 30 s loop costs ~0.3 s and, in float64 transforms, 40 MB of peak memory, more than the
    whole streamed render of an hour: a warm build reads the loop back instead (5 MB). The name holds a
    hash of this module's source and numpy's version, so any change to the generators makes a new file.
    """
    import hashlib

    from audiogen.voice.cache import default_cache_dir

    ident = hashlib.sha256(Path(__file__).read_bytes() + np.__version__.encode()).hexdigest()[:16]
    return default_cache_dir() / "sounds" / f"{name}-{rate}-{ident}.npy"


@functools.lru_cache(maxsize=32)
def _cached_cue(name: str, rate: int) -> np.ndarray:
    return _frozen(_generate_cue(name, rate))


def _generate_ambience(name: str, rate: int) -> np.ndarray:
    """Render an ambience afresh (uncached, writable)."""
    n = int(round(_AMBIENCE_SECONDS[name] * rate))
    rng = np.random.default_rng(_SEEDS[name])
    x = _AMBIENCE_MAKERS[name](n, rate, rng)
    return normalize_rms(x, _AMBIENCE_DBFS)


def _cue_samples(name: str, rate: int) -> int:
    return -(-_CUE_MS[name] * rate // 1000)  # ceil, so that len * 1000 // rate == the ms in the table


def _generate_cue(name: str, rate: int) -> np.ndarray:
    """Render a cue afresh (uncached, writable)."""
    x = _CUE_MAKERS[name](_cue_samples(name, rate), rate)
    peak = float(np.max(np.abs(x)))
    return (x * (_CUE_PEAK[name] / peak)).astype(np.float32)


# --------------------------------------------------------------------------------- spectral shaping


def _lowpass(f: np.ndarray, fc: float, order: int = 2) -> np.ndarray:
    """Butterworth-like magnitude response."""
    return 1.0 / np.sqrt(1.0 + (f / fc) ** (2 * order))


def _highpass(f: np.ndarray, fc: float, order: int = 2) -> np.ndarray:
    r = (f / fc) ** order
    return r / np.sqrt(1.0 + r * r)


def _pink(f: np.ndarray, floor_hz: float = 20.0) -> np.ndarray:
    """Amplitude of 1/f (pink) power, held flat below `floor_hz` (no sub-audio wander)."""
    return 1.0 / np.sqrt(np.maximum(f, floor_hz))


def _shaped_noise(rng: np.random.Generator, n: int, rate: int,
                  gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Gaussian noise, exactly periodic in `n`, with amplitude spectrum `gain(freq_hz)`, unit RMS."""
    bins = n // 2 + 1
    spec = np.empty(bins, dtype=np.complex128)  # filled in place: a render's peak memory is made here
    spec.real = rng.standard_normal(bins)
    spec.imag = rng.standard_normal(bins)
    spec *= gain(np.fft.rfftfreq(n, 1.0 / rate))
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    del spec
    x /= np.sqrt(np.dot(x, x) / n)
    return x


def _periodic_sine(n: int, rate: int, freq: float, phase: float = 0.0) -> np.ndarray:
    """sin at the frequency nearest `freq` with a whole number of cycles in `n` samples (exactly periodic)."""
    k = max(1, int(round(freq * n / rate)))
    j = np.arange(n, dtype=np.int64)
    j *= k
    j %= n  # exact phase reduction in integers, so float32 suffices for the sine (and is much faster)
    ph = j.astype(np.float32)
    ph *= np.float32(2.0 * np.pi / n)
    ph += np.float32(phase % (2.0 * np.pi))
    return np.sin(ph)


# ---------------------------------------------------------------------------------------- ambiences


def _rain(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    # Soft hiss: between white and pink, rumble and sizzle rolled off.
    bed = _shaped_noise(rng, n, rate, lambda f: np.maximum(f, 50.0) ** -0.25
                        * _highpass(f, 180.0, 1) * _lowpass(f, 2800.0, 2))
    # Slow, slight changes of intensity (periods of 10 and ~4.3 s at 30 s).
    bed *= (1.0 + 0.12 * _periodic_sine(n, rate, 3 * rate / n, rng.uniform(0, 2 * np.pi))
            + 0.06 * _periodic_sine(n, rate, 7 * rate / n, rng.uniform(0, 2 * np.pi)))
    # Sparse soft droplets: tiny rising "plinks", placed with wrap-around so the loop stays seamless.
    seconds = n / rate
    out = bed
    for _ in range(int(3 * seconds)):
        f0 = min(rng.uniform(1500.0, 4200.0), 0.4 * rate)
        tau = rng.uniform(0.005, 0.018)
        amp = 0.8 + 2.4 * rng.random() ** 3  # mostly soft, now and then a closer drop
        length = int(6 * tau * rate)
        t = np.arange(length) / rate
        glide = 0.25 * t / (6 * tau)  # pitch rises ~25 % over the drop, like a small bubble
        phase = 2 * np.pi * f0 * (t + 0.5 * glide * t)
        drop = amp * (1.0 - np.exp(-t / 0.0008)) * np.exp(-t / tau) * np.sin(phase)
        idx = (int(rng.integers(n)) + np.arange(length)) % n
        out[idx] += drop
    return out


def _wave_envelope(n: int, rate: int, rng: np.random.Generator, mean_period: float) -> np.ndarray:
    """Periodic swell envelope in [0, 1]: waves every ~`mean_period` s, slow build, longer retreat."""
    seconds = n / rate
    count = max(1, int(round(seconds / mean_period)))
    spacing = seconds / count
    hop = 32  # the envelope is smooth: compute it every `hop` samples, then interpolate (periodically)
    coarse = np.arange(0, n, hop)
    t = coarse / rate
    env = np.zeros(coarse.size)
    for j in range(count):
        centre = (j + rng.uniform(-0.15, 0.15)) * spacing
        rise, fall = rng.uniform(3.5, 5.0), rng.uniform(4.5, 6.5)
        amp = rng.uniform(0.7, 1.0)
        d = (t - centre + seconds / 2) % seconds - seconds / 2  # circular distance to the crest
        up = (d >= -rise) & (d < 0)
        down = (d >= 0) & (d <= fall)
        env[up] += amp * (0.5 - 0.5 * np.cos(np.pi * (d[up] + rise) / rise))
        env[down] += amp * (0.5 + 0.5 * np.cos(np.pi * d[down] / fall))
    return np.interp(np.arange(n), coarse, env / env.max(), period=n)


def _ocean(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    body = _shaped_noise(rng, n, rate, lambda f: _pink(f) * _highpass(f, 40.0, 1) * _lowpass(f, 450.0, 2))
    wash = _shaped_noise(rng, n, rate, lambda f: _pink(f) * _highpass(f, 300.0, 1) * _lowpass(f, 3000.0, 2))
    env = _wave_envelope(n, rate, rng, mean_period=9.5)
    # The low body swells gently; the brighter wash only comes in near each crest.
    return body * (0.3 + 0.7 * env) + 0.55 * wash * env**2


def _drone(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    # (frequency Hz, level, detune Hz): a low A with its fifth and octaves. Each is voiced by a sine
    # and a quieter, slightly detuned twin (slow, shallow beating, a different rate per partial so
    # the beats never line up) under a slow amplitude LFO; every rate fits the loop a whole number
    # of times, so the bed is exactly periodic.
    partials = [(55.0, 0.35, 0.09), (110.0, 1.0, 0.06), (165.0, 0.55, 0.125), (220.0, 0.45, 0.16),
                (330.0, 0.12, 0.22)]
    seconds = n / rate
    for number, (freq, level, detune) in enumerate(partials):
        lfo_cycles = 2 + number % 4  # 16, 10.7, 8, 6.4 s at 32 s
        depth = rng.uniform(0.15, 0.25)
        lfo = 1.0 + depth * _periodic_sine(n, rate, lfo_cycles / seconds, rng.uniform(0, 2 * np.pi))
        voice = _periodic_sine(n, rate, freq, rng.uniform(0, 2 * np.pi))
        voice += 0.45 * _periodic_sine(n, rate, freq + detune, rng.uniform(0, 2 * np.pi))
        out += level * lfo * voice
    return out


def _pink_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    return _shaped_noise(rng, n, rate, _pink)


_AMBIENCE_MAKERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "rain": _rain,
    "ocean": _ocean,
    "drone": _drone,
    "pink-noise": _pink_noise,
}


# --------------------------------------------------------------------------------------------- cues

# A mode: (frequency Hz, amplitude, decay time constant s, swell (rise) time constant s or 0).
_Mode = tuple[float, float, float, float]


def _modal(n: int, rate: int, modes: list[_Mode], attack_s: float, release_frac: float) -> np.ndarray:
    """Sum of exponentially decaying sine modes with a raised-cosine attack from exact zero and a
    half-cosine release reaching exact zero on the last sample."""
    t = np.arange(n) / rate
    out = np.zeros(n)
    for freq, amp, decay, rise in modes:
        if freq >= 0.45 * rate:
            continue
        env = np.exp(-t / decay)
        if rise > 0:
            env *= 1.0 - np.exp(-t / rise)
        out += amp * env * np.sin(2 * np.pi * freq * t)
    a = max(2, int(attack_s * rate))
    out[:a] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    r = max(2, int(release_frac * n))
    out[n - r:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(r) / (r - 1))
    return out


def _chime(n: int, rate: int) -> np.ndarray:
    f0 = 880.0
    # Free-bar (tubular chime) partial ratios 1 : 2.756 : 5.404 : 8.933; a detuned twin of the
    # fundamental adds a slow shimmer.
    modes = [
        (f0, 1.0, 0.6, 0.0),
        (f0 + 1.3, 0.45, 0.65, 0.0),
        (f0 * 2.756, 0.32, 0.28, 0.0),
        (f0 * 5.404, 0.12, 0.12, 0.0),
        (f0 * 8.933, 0.04, 0.06, 0.0),
    ]
    return _modal(n, rate, modes, attack_s=0.004, release_frac=0.35)


def _bell(n: int, rate: int) -> np.ndarray:
    prime = 330.0
    # Church-bell partials relative to the prime: hum, prime, minor-third tierce, quint, nominal, ...
    # Twins a fraction of a Hz apart give the characteristic slow warble.
    modes = [
        (prime * 0.5, 0.45, 1.2, 0.0),
        (prime * 1.0, 0.8, 0.9, 0.0),
        (prime * 1.0 + 0.7, 0.3, 0.9, 0.0),
        (prime * 1.189, 0.45, 0.7, 0.0),
        (prime * 1.506, 0.22, 0.5, 0.0),
        (prime * 2.0, 0.55, 0.6, 0.0),
        (prime * 2.0 + 1.1, 0.2, 0.6, 0.0),
        (prime * 2.514, 0.22, 0.35, 0.0),
        (prime * 3.011, 0.14, 0.25, 0.0),
        (prime * 4.166, 0.07, 0.15, 0.0),
    ]
    return _modal(n, rate, modes, attack_s=0.005, release_frac=0.4)


def _tick(n: int, rate: int) -> np.ndarray:
    # A small woodblock: a few strongly damped modes, soft 1.5 ms attack.
    modes = [
        (900.0, 1.0, 0.010, 0.0),
        (2210.0, 0.4, 0.006, 0.0),
        (3580.0, 0.15, 0.004, 0.0),
    ]
    return _modal(n, rate, modes, attack_s=0.0015, release_frac=0.5)


def _gong(n: int, rate: int) -> np.ndarray:
    f0 = 98.0
    ratios = [1.0, 1.49, 2.07, 2.52, 3.04, 3.67, 4.38, 5.22, 6.15]
    amps = [1.0, 0.55, 0.5, 0.42, 0.32, 0.24, 0.16, 0.1, 0.06]
    decays = [2.2, 1.8, 1.6, 1.3, 1.1, 0.95, 0.8, 0.65, 0.5]
    swells = [0.02, 0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 1.0]  # upper partials bloom after the strike
    modes: list[_Mode] = []
    for r, a, d, s in zip(ratios, amps, decays, swells, strict=True):
        modes.append((f0 * r, a, d, s))
        modes.append((f0 * r * 1.004, 0.35 * a, d, s))  # slight beating
    return _modal(n, rate, modes, attack_s=0.008, release_frac=0.35)


_CUE_MAKERS: dict[str, Callable[[int, int], np.ndarray]] = {
    "chime": _chime,
    "bell": _bell,
    "tick": _tick,
    "gong": _gong,
}

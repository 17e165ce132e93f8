"""Built-in sounds, user sound files, loudness normalisation and looping (audiogen.audio.sounds)."""

from __future__ import annotations

import time
import wave

import numpy as np
import pytest

from audiogen.audio import sounds
from audiogen.audio.sounds import (
    AMBIENCES,
    CUES,
    ambience,
    cue,
    cue_length_ms,
    load_sound_file,
    make_loop,
    normalize_rms,
)
from audiogen.dsp.ffmpeg import INTERNAL_RATE
from audiogen.routine.errors import SoundError

R = INTERNAL_RATE
LOW_RATE = 16000  # for fresh (uncached) renders, to keep the suite fast


def dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def per_second_dbfs(x: np.ndarray, rate: int = R) -> np.ndarray:
    whole = x[: x.size // rate * rate].astype(np.float64).reshape(-1, rate)
    return 20 * np.log10(np.sqrt(np.mean(whole**2, axis=1)))


def band_share(x: np.ndarray, lo: float, hi: float, rate: int = R) -> float:
    """Fraction of the signal's energy between lo and hi Hz."""
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / rate)
    return float(power[(f >= lo) & (f < hi)].sum() / power.sum())


def burstiness(x: np.ndarray, lo: float = 1500, hi: float = 5000, rate: int = R) -> float:
    """Loudest 10 ms of the lo-hi Hz band over its median 10 ms (about 1.3 for steady noise)."""
    spectrum = np.fft.rfft(x.astype(np.float64))
    f = np.fft.rfftfreq(x.size, 1 / rate)
    spectrum[(f < lo) | (f > hi)] = 0
    band = np.fft.irfft(spectrum, x.size)
    frame = rate // 100
    levels = np.sqrt(np.mean(band[: band.size // frame * frame].reshape(-1, frame) ** 2, axis=1))
    return float(levels.max() / np.median(levels))


def write_wav(path, samples: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def test_names_are_the_public_tuples():
    assert AMBIENCES == ("rain", "ocean", "drone", "pink-noise")
    assert CUES == ("chime", "bell", "tick", "gong")


# ------------------------------------------------------------------------------------------ ambiences


@pytest.mark.parametrize("name", AMBIENCES)
def test_ambience_is_a_sane_float32_bed(name):
    x = ambience(name)
    assert x.dtype == np.float32 and x.ndim == 1
    assert 20 <= x.size / R <= 40
    assert np.all(np.isfinite(x))
    assert np.max(np.abs(x)) <= 0.98
    assert dbfs(x) == pytest.approx(-20.0, abs=0.05)  # audible, and all beds at one level
    assert abs(float(np.mean(x))) < 1e-3  # no DC offset


@pytest.mark.parametrize("name", AMBIENCES)
def test_ambience_loops_without_a_seam(name):
    x = ambience(name)
    steps = np.abs(np.diff(x))
    seam = abs(float(x[0]) - float(x[-1]))
    assert seam <= np.percentile(steps, 99)
    # and the level does not dip or jump around the seam
    around = np.concatenate([x[-R // 2:], x[: R // 2]])
    assert abs(dbfs(around) - dbfs(x)) < 8


@pytest.mark.parametrize("name", AMBIENCES)
def test_ambience_is_deterministic_and_cached_read_only(name):
    first = ambience(name, LOW_RATE)
    fresh = sounds._generate_ambience(name, LOW_RATE)  # bypasses the cache
    np.testing.assert_array_equal(first, fresh)
    assert ambience(name) is ambience(name)
    x = ambience(name)
    assert not x.flags.writeable
    with pytest.raises(ValueError):
        x[0] = 0.5


def test_ambience_at_another_rate_has_the_same_duration():
    a, b = ambience("pink-noise", LOW_RATE), ambience("pink-noise")
    assert a.size / LOW_RATE == pytest.approx(b.size / R, abs=1e-3)


def test_pink_noise_falls_3_db_per_octave():
    x = ambience("pink-noise").astype(np.float64)
    seg = 8192
    frames = x[: x.size // seg * seg].reshape(-1, seg) * np.hanning(seg)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    f = np.fft.rfftfreq(seg, 1 / R)
    sel = (f >= 100) & (f <= 10000)
    slope = np.polyfit(np.log10(f[sel]), np.log10(power[sel]), 1)[0]
    assert -1.3 <= slope <= -0.7
    # steady: no swells in plain noise
    assert np.ptp(per_second_dbfs(ambience("pink-noise"))) < 1.0


def test_rain_is_soft_low_passed_noise_with_droplets():
    x = ambience("rain")
    assert band_share(x, 8000, R / 2) < 0.01  # no harsh hiss
    assert band_share(x, 0, 100) < 0.02  # no rumble
    assert band_share(x, 200, 4000) > 0.8
    # droplets: in their band (1.5-5 kHz), short bursts rise clearly above the bed now and then,
    # which plain noise never does
    assert burstiness(x) > 1.8
    assert burstiness(ambience("pink-noise")) < 1.6


def test_ocean_swells_slowly():
    level = per_second_dbfs(ambience("ocean"))
    assert np.ptp(level) > 6  # waves come and go
    # the level changes slowly (swells over seconds, not flicker)
    assert np.max(np.abs(np.diff(level))) < 5
    assert band_share(ambience("ocean"), 0, 1000) > 0.8  # low-passed
    # about 3-5 wave crests in the 36 s loop (~8-12 s apart)
    smooth = np.convolve(np.concatenate([level, level[:2]]), np.ones(3) / 3, mode="valid")
    crests = sum(
        1 for i in range(smooth.size) if smooth[i] > smooth[i - 1] and smooth[i] >= smooth[(i + 1) % smooth.size]
    )
    assert 3 <= crests <= 5


def test_drone_is_low_and_tonal():
    x = ambience("drone").astype(np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / R)
    assert abs(f[np.argmax(power)] - 110) < 0.5  # the root
    assert band_share(x, 0, 400) > 0.999  # soft: nothing bright
    level = per_second_dbfs(ambience("drone"))
    assert 1 < np.ptp(level) < 12  # it breathes, gently


# ---------------------------------------------------------------------------------------------- cues

CUE_SECONDS = {"tick": (0.05, 0.1), "chime": (1.5, 2.0), "bell": (2.3, 2.7), "gong": (3.7, 4.3)}


@pytest.mark.parametrize("name", CUES)
def test_cue_is_a_short_clean_float32_sound(name):
    x = cue(name)
    assert x.dtype == np.float32 and x.ndim == 1
    lo, hi = CUE_SECONDS[name]
    assert lo <= x.size / R <= hi
    assert np.all(np.isfinite(x))
    peak = float(np.max(np.abs(x)))
    assert 0.3 <= peak <= 1.0
    assert dbfs(x) > -40  # not silent
    # fades to true silence
    assert x[-1] == 0.0
    assert np.max(np.abs(x[-int(0.010 * R):])) < 1e-3
    # no click at the start: begins at zero and ramps over a few ms
    assert abs(float(x[0])) < 1e-6
    assert np.max(np.abs(x[: int(0.0005 * R)])) < 0.3 * peak
    assert np.max(np.abs(np.diff(x[: int(0.005 * R)]))) < 0.2


@pytest.mark.parametrize("name", CUES)
def test_cue_is_deterministic_and_cached_read_only(name):
    np.testing.assert_array_equal(cue(name), sounds._generate_cue(name, R))
    assert cue(name) is cue(name)
    with pytest.raises(ValueError):
        cue(name)[10] = 1.0


@pytest.mark.parametrize("name", CUES)
def test_cue_length_ms_matches_the_audio(name):
    assert cue_length_ms(name) == len(cue(name)) * 1000 // R
    for rate in (22050, 48000):
        assert len(cue(name, rate)) * 1000 // rate == cue_length_ms(name)


def test_cue_characters():
    def dominant(x):
        power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
        return np.fft.rfftfreq(x.size, 1 / R)[np.argmax(power)]

    assert dominant(cue("gong")) < dominant(cue("bell")) < dominant(cue("chime"))
    # the gong swells: its loudest moment is well after the strike
    assert np.argmax(np.abs(cue("gong"))) / R > 0.1
    # the tick is over almost at once
    tick = cue("tick")
    assert np.max(np.abs(tick[int(0.04 * R):])) < 0.05 * np.max(np.abs(tick))


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("func", "bad", "suggestion"),
    [(ambience, "rian", "rain"), (ambience, "pink_noise", "pink-noise"), (ambience, "Ocean", "ocean"),
     (cue, "gongg", "gong"), (cue, "chimes", "chime"), (cue_length_ms, "bel", "bell")],
)
def test_unknown_name_suggests_the_closest(func, bad, suggestion):
    with pytest.raises(SoundError) as info:
        func(bad)
    err = info.value
    assert bad in err.message
    assert f"did you mean {suggestion!r}" in err.hint
    assert f"did you mean {suggestion!r}" in str(err)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(SoundError) as info:
        ambience("thunderstorm")
    assert "did you mean" not in info.value.hint
    assert all(name in info.value.hint for name in AMBIENCES)
    with pytest.raises(SoundError) as info:
        cue(None)  # type: ignore[arg-type]
    assert all(name in info.value.hint for name in CUES)


# ------------------------------------------------------------------------------------- normalize_rms


def test_normalize_rms_hits_the_target():
    rng = np.random.default_rng(1)
    x = (0.01 * rng.standard_normal(R)).astype(np.float32)
    before = x.copy()
    y = normalize_rms(x, -23.0)
    assert y.dtype == np.float32
    assert dbfs(y) == pytest.approx(-23.0, abs=0.1)
    assert np.max(np.abs(y)) <= 0.98
    np.testing.assert_array_equal(x, before)  # input untouched
    # a quiet sine comes up too (and the shape is kept)
    sine = 0.001 * np.sin(2 * np.pi * 440 * np.arange(R) / R)
    z = normalize_rms(sine, -12.0)
    assert dbfs(z) == pytest.approx(-12.0, abs=0.1)
    np.testing.assert_allclose(z / z.max(), sine / sine.max(), atol=1e-5)


def test_normalize_rms_limits_the_peak():
    x = np.zeros(R, dtype=np.float32)
    x[::4410] = 1.0  # very peaky: reaching -6 dBFS RMS would need peaks far above full scale
    y = normalize_rms(x, -6.0)
    assert np.max(np.abs(y)) == pytest.approx(0.98, abs=1e-6)
    assert dbfs(y) < -6.0


def test_normalize_rms_leaves_silence_alone():
    y = normalize_rms(np.zeros(100, dtype=np.float32), -20.0)
    assert y.dtype == np.float32 and not np.any(y)
    assert normalize_rms(np.zeros(0), -20.0).size == 0


# ----------------------------------------------------------------------------------------- make_loop


def test_make_loop_removes_the_seam():
    rate = 8000
    rng = np.random.default_rng(7)
    t = np.arange(3 * rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 1.3 * t) + 0.002 * rng.standard_normal(t.size)).astype(np.float32)
    typical = np.percentile(np.abs(np.diff(x)), 99)
    naive_jump = abs(float(x[-1]) - float(x[0]))
    assert naive_jump > 10 * typical  # tiling x as-is clicks at every repeat

    y = make_loop(x, rate=rate, crossfade_ms=500)
    c = rate // 2
    assert y.dtype == np.float32 and y.size == x.size - c
    tiled = np.concatenate([y, y, y])
    steps = np.abs(np.diff(tiled))
    assert abs(float(y[-1]) - float(y[0])) <= np.percentile(steps, 99)
    assert np.max(steps) < 3 * typical  # nowhere a jump: neither at the seam nor where the fade ends
    # the seam continues the original: what follows y[-1] is what followed it in x
    assert y[0] == pytest.approx(x[x.size - c], abs=1e-6)
    np.testing.assert_array_equal(y[c:], x[c: x.size - c])


def test_make_loop_crossfade_is_equal_power_for_noise():
    rate = 8000
    x = np.random.default_rng(3).standard_normal(8 * rate).astype(np.float32)
    y = make_loop(x, rate=rate, crossfade_ms=2000)
    c = 2 * rate
    # uncorrelated head and tail: sin/cos fades keep the power, so no dip mid-crossfade
    middle = y[c // 4: 3 * c // 4]
    assert abs(dbfs(middle) - dbfs(y[c:])) < 0.5


def test_make_loop_shortens_the_crossfade_for_short_inputs():
    rate = 8000
    x = np.random.default_rng(5).standard_normal(rate).astype(np.float32)  # 1 s, asked for 2 s fade
    y = make_loop(x, rate=rate, crossfade_ms=2000)
    assert y.size == x.size - x.size // 4
    tiny = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    out = make_loop(tiny, rate=rate)
    np.testing.assert_array_equal(out, tiny)
    assert out is not tiny


def test_make_loop_accepts_a_read_only_cached_ambience():
    bed = ambience("ocean", LOW_RATE)
    y = make_loop(bed, rate=LOW_RATE, crossfade_ms=1000)
    assert y.flags.writeable and y.size == bed.size - LOW_RATE


# ----------------------------------------------------------------------------------- load_sound_file


def test_load_sound_file_round_trip(tmp_path):
    n = R // 2
    pcm = (8000 * np.sin(2 * np.pi * 440 * np.arange(n) / R)).astype(np.int16)
    path = tmp_path / "tone.wav"
    write_wav(path, pcm, R)
    x = load_sound_file(path)
    assert x.dtype == np.float32 and x.size == n
    np.testing.assert_allclose(x, pcm / 32768.0, atol=2e-4)
    assert load_sound_file(str(path)).size == n  # str paths too


def test_load_sound_file_resamples_and_downmixes(tmp_path):
    rate, n = 22050, 22050
    left = (6000 * np.sin(2 * np.pi * 220 * np.arange(n) / rate)).astype(np.int16)
    stereo = np.column_stack([left, left]).ravel()
    path = tmp_path / "stereo 22k.wav"  # a space in the name, too
    write_wav(path, stereo, rate, channels=2)
    x = load_sound_file(path)
    assert abs(x.size - 2 * n) <= 64  # one second at INTERNAL_RATE
    assert dbfs(x) == pytest.approx(dbfs(left / 32768.0), abs=0.5)


def test_load_sound_file_missing(tmp_path):
    path = tmp_path / "nope.mp3"
    with pytest.raises(SoundError) as info:
        load_sound_file(path)
    assert str(path) in info.value.message
    assert "not found" in str(info.value)


def test_load_sound_file_not_audio(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio, just some text\n" * 20)
    with pytest.raises(SoundError) as info:
        load_sound_file(path)
    assert str(path) in info.value.message
    assert info.value.hint


def test_load_sound_file_directory(tmp_path):
    with pytest.raises(SoundError) as info:
        load_sound_file(tmp_path)
    assert str(tmp_path) in info.value.message


# ------------------------------------------------------------------------------------------- speed


def test_generating_everything_is_fast():
    """Speed is the behaviour (every build makes these), so this stays a bound on time, but on this process's
    CPU time, which other work on a busy machine does not add to: about 0.5 s here, so 5 s is a 10x margin,
    while a per-sample Python loop over their 5.7 million samples (what this guards against) takes 10 s or more."""
    start = time.process_time()
    for name in AMBIENCES:
        sounds._generate_ambience(name, R)
    for name in CUES:
        sounds._generate_cue(name, R)
    assert time.process_time() - start < 5.0

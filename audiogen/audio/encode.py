"""Streaming PCM blocks into the encoder: ffmpeg's LAME in its own process, fed by a writer thread.

Memory stays at a few blocks whatever the session length; the encoder's errors become typed errors.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from audiogen.dsp.ffmpeg import INTERNAL_RATE, ffmpeg_exe
from audiogen.routine.errors import OutputError, RenderError


def to_int16(block: np.ndarray) -> bytes:
    return (np.clip(block, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()


def int16_into(block: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> np.ndarray:
    """`to_int16(block)` written into `out` (int16, at least as long) through `scratch` (float32, the same):
    the same samples, without a new array per step. Scaling by 2^15 is exact in float32, so scaling first
    and clipping to the int16 range is clipping to [-1, 32767/32768] first; the cast truncates as astype does."""
    n = len(block)
    if block.dtype != np.float32:  # (float64 is clipped and scaled in float64, as to_int16 does)
        out[:n] = np.frombuffer(to_int16(block), dtype="<i2")
        return out[:n]
    np.multiply(block, np.float32(32768.0), out=scratch[:n])
    np.clip(scratch[:n], -32768.0, 32767.0, out=out[:n], casting="unsafe")
    return out[:n]


#: Bytes the pipe to an encoder may hold (Linux's F_SETPIPE_SZ; capped at /proc/sys/fs/pipe-max-size): the
#: writer hands over a block in a few wake-ups instead of sixteen 64 KiB ones.
PIPE_BYTES = 1 << 20


def widen_pipe(fd: int, size: int = PIPE_BYTES) -> None:
    """Ask the kernel for a `size`-byte pipe buffer on `fd` (Linux only; elsewhere, or refused, nothing)."""
    import fcntl

    setsz = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsz is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, setsz, size)


#: Blocks queued for the writer: with one being written and one being made, the buffers an encode holds.
QUEUE_BLOCKS = 4


def encode_mp3(
    blocks: Iterable[np.ndarray],
    out_path: str | Path,
    *,
    bitrate: str = "96k",
    channels: int = 1,
    sample_rate: int = 44100,
) -> None:
    """Stream float32 mono blocks into ffmpeg's LAME encoder, writing `out_path` (no tags)."""
    args = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(INTERNAL_RATE), "-ac", "1", "-i", "pipe:0",
        "-map_metadata", "-1", "-id3v2_version", "0", "-write_xing", "1",
        "-c:a", "libmp3lame", "-b:a", str(bitrate), "-ac", str(channels), "-ar", str(sample_rate),
        "-f", "mp3", str(out_path),
    ]
    # its own process group: Ctrl-C reaches audiogen, which stops the encoder itself and removes its file
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0)
    widen_pipe(proc.stdin.fileno())
    # A writer thread feeds the encoder while the next blocks are mixed: the two overlap on two cores.
    # The queue is short, so memory stays at a few blocks whatever the session length; the int16 buffers
    # go round (made once, handed back by the writer once written), so the encode allocates none per block.
    pending: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=QUEUE_BLOCKS)
    free: queue.Queue[np.ndarray] = queue.Queue()
    failure: list[BaseException] = []

    def writer() -> None:
        data = None
        try:
            while (data := pending.get()) is not None:
                proc.stdin.write(memoryview(data).cast("B"))
                free.put(data.base if data.base is not None else data)
            proc.stdin.close()
        except BaseException as e:  # BrokenPipe: ffmpeg died; its stderr says why
            failure.append(e)
            while data is not None:  # the rest is dropped; the buffers go back, so the mixer never waits
                free.put(data.base if data.base is not None else data)
                data = pending.get()

    thread = threading.Thread(target=writer, name="mp3-writer", daemon=True)
    thread.start()
    scratch: np.ndarray | None = None
    made = 0  # int16 buffers made so far: at most QUEUE_BLOCKS + 2 of the largest block
    try:
        for block in blocks:
            n = len(block)
            if scratch is None or len(scratch) < n:  # the first block (or a longer one): buffers of its size
                scratch = np.empty(n, dtype=np.float32)
                while not free.empty():
                    free.get_nowait()
                made = 0
            if made < QUEUE_BLOCKS + 2 and free.empty():
                buf = np.empty(len(scratch), dtype="<i2")
                made += 1
            else:
                buf = free.get()
                if len(buf) < n:  # one of the buffers from before a longer block: replaced
                    buf = np.empty(len(scratch), dtype="<i2")
            pending.put(int16_into(block, scratch, buf))
            if failure:
                break
        pending.put(None)
        thread.join()
    except BaseException:
        proc.kill()
        pending.put(None)
        proc.wait()
        raise
    err = proc.stderr.read().decode("utf-8", "replace").strip()
    rc = proc.wait()
    if rc != 0:
        raise _encoder_failure(rc, err, out_path, "MP3")


# -- several formats from one mix -----------------------------------------------------------------
#: What each output format is called on disk, and what ffmpeg makes of it.
EXTENSIONS = {"mp3": ".mp3", "m4b": ".m4b", "opus": ".opus", "wav": ".wav", "flac": ".flac"}


def opus_bitrate(bitrate: str) -> str:
    """Opus carries speech as well as MP3 at about half the bitrate: half of `output.bitrate`, 24k at least."""
    kbps = int(str(bitrate).rstrip("k"))
    return f"{max(24, kbps // 2)}k"


def ffmetadata(chapters: Iterable[tuple[str, int, int]]) -> str:
    """An FFMETADATA1 text with one [CHAPTER] per (title, start_ms, end_ms): how ffmpeg is given chapters."""

    def esc(s: str) -> str:
        for c in "\\=;#\n":
            s = s.replace(c, "\\" + c)
        return s

    lines = [";FFMETADATA1"]
    for title, start, end in chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={int(start)}", f"END={int(end)}", f"title={esc(title)}"]
    return "\n".join(lines) + "\n"


def output_args(fmt: str, *, bitrate: str = "96k", channels: int = 1, sample_rate: int = 44100,
                metadata_input: int | None = None) -> list[str]:
    """ffmpeg's output options (after the inputs) for one format; tags are publish/'s job, except that an M4B's
    chapters come from the FFMETADATA input `metadata_input` (ffmpeg's mp4 muxer writes both the Nero `chpl`
    atom and a QuickTime chapter track from it)."""
    if fmt == "mp3":
        return ["-map_metadata", "-1", "-id3v2_version", "0", "-write_xing", "1", "-c:a", "libmp3lame",
                "-b:a", str(bitrate), "-ac", str(channels), "-ar", str(sample_rate), "-f", "mp3"]
    if fmt == "m4b":
        meta = (["-map", "0:a", "-map_metadata", str(metadata_input), "-map_chapters", str(metadata_input)]
                if metadata_input is not None else ["-map_metadata", "-1"])
        return [*meta, "-c:a", "aac", "-b:a", str(bitrate), "-ac", str(channels), "-ar", str(sample_rate),
                "-movflags", "+faststart", "-f", "ipod"]
    if fmt == "opus":  # Ogg Opus always decodes at 48 kHz
        return ["-map_metadata", "-1", "-c:a", "libopus", "-b:a", opus_bitrate(bitrate), "-ac", str(channels),
                "-ar", "48000", "-f", "ogg"]
    if fmt == "wav":  # stems: 32-bit float, so voice + bed is the unlimited mix exactly (peaks above 0 dBFS too)
        return ["-map_metadata", "-1", "-c:a", "pcm_f32le", "-f", "wav"]
    if fmt == "flac":
        return ["-map_metadata", "-1", "-c:a", "flac", "-f", "flac"]
    raise ValueError(f"unknown output format {fmt!r}")


def _encoder_failure(rc: int, err: str, out_path, what: str) -> Exception:
    if err:
        last = err.splitlines()[-1]
    elif rc == -signal.SIGXFSZ:
        last = "File too large (the file-size limit was reached)"
    else:
        last = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
    if rc == -signal.SIGXFSZ or any(s in err for s in ("No space left", "Permission denied", "Not a directory",
                                                        "File too large", "quota")):
        return OutputError(f"cannot write {out_path}: {last}", path=str(out_path))
    return RenderError(f"the {what} encoder failed writing {out_path}: {last}", path=str(out_path))


class PcmEncoder:
    """One ffmpeg process fed PCM bytes on its stdin by a writer thread, writing one file.

    `feed` returns at once unless the encoder is more than a few blocks behind (bounded memory);
    `finish` waits for the file and raises a typed error if ffmpeg failed; `abort` kills it."""

    def __init__(self, fmt: str, out_path: str | Path, *, bitrate: str = "96k", channels: int = 1,
                 sample_rate: int = 44100, chapters: Iterable[tuple[str, int, int]] | None = None,
                 pcm: str = "s16le") -> None:
        import os
        import tempfile

        self.fmt, self.out_path, self.pcm = fmt, Path(out_path), pcm
        self.rate, self.samples = int(sample_rate), 0
        self._meta: str | None = None
        inputs = ["-f", pcm, "-ar", str(INTERNAL_RATE), "-ac", "1", "-i", "pipe:0"]
        meta_index = None
        chapters = list(chapters or [])
        if chapters and fmt == "m4b":
            fd, self._meta = tempfile.mkstemp(prefix="audiogen-", suffix=".ffmeta")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(ffmetadata(chapters))
            inputs += ["-f", "ffmetadata", "-i", self._meta]
            meta_index = 1
        args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *inputs,
                *output_args(fmt, bitrate=bitrate, channels=channels, sample_rate=sample_rate,
                             metadata_input=meta_index), str(out_path)]
        # stderr to a file, not a pipe: several encoders run at once and none may block on a full pipe
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=self._err, process_group=0)
        self._pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._write, name=f"{fmt}-writer", daemon=True)
        self._thread.start()
        self._done = False

    def _write(self) -> None:
        try:
            while (data := self._pending.get()) is not None:
                if not self._failure:
                    self.proc.stdin.write(data)
            self.proc.stdin.close()
        except BaseException as e:  # BrokenPipe: ffmpeg died; its stderr says why
            self._failure.append(e)
            while self._pending.get() is not None:
                pass

    @property
    def failed(self) -> bool:
        return bool(self._failure)

    def feed(self, data: bytes) -> None:
        self.samples += len(data) // (2 if self.pcm == "s16le" else 4)
        self._pending.put(data)

    def finish(self) -> None:
        """Close the input and wait for the file; a typed error if ffmpeg failed."""
        if self._done:
            return
        self._done = True
        self._pending.put(None)
        self._thread.join()
        rc = self.proc.wait()
        self._err.seek(0)
        err = self._err.read().decode("utf-8", "replace").strip() if rc != 0 else ""
        self._cleanup()
        if rc != 0:
            raise _encoder_failure(rc, err, self.out_path, self.fmt.upper())
        if self.fmt == "mp3" and self.rate == INTERNAL_RATE:  # same rate: as many samples out as in
            try:
                fix_mp3_padding(self.out_path, self.samples)
            except OSError as e:
                raise OutputError(f"cannot write {self.out_path}: {e.strerror or e}", path=str(self.out_path)) from None

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self.proc.kill()
        self._pending.put(None)
        self._thread.join()
        self.proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        import os

        if self._meta:
            with contextlib.suppress(OSError):
                os.unlink(self._meta)
            self._meta = None
        with contextlib.suppress(OSError):
            self._err.close()


def fix_mp3_padding(path: str | Path, samples: int) -> bool:
    """Make the LAME tag's encoder padding say exactly how many samples the MP3 holds (gapless playback).

    ffmpeg's muxer writes at most one frame (1152) of padding plus the decoder delay there, but LAME's
    flush sometimes adds more: the file then decodes up to 47 samples longer than it was fed (measured
    with the bundled ffmpeg: 156687 samples fed, 156719 decoded). Decoders read the padding from this
    field (ffmpeg's computes frames x 1152 - delay - padding), so it is set from what was fed. Returns
    whether the field was rewritten; a file without a LAME/Xing `Info` tag in its first frame is left alone."""
    with open(path, "r+b") as f:
        head = bytearray(f.read(512))
        at = next((head.find(tag, 0, 64) for tag in (b"Info", b"Xing") if head.find(tag, 0, 64) > 0), -1)
        if at < 0 or head[:1] != b"\xff":
            return False
        flags = int.from_bytes(head[at + 4 : at + 8], "big")
        if not flags & 1:
            return False
        frames = int.from_bytes(head[at + 8 : at + 12], "big")
        lame = at + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
        if head[lame : lame + 4] not in (b"Lavc", b"LAME", b"Lavf"):
            return False
        b = head[lame + 21 : lame + 24]
        delay = (b[0] << 4) | (b[1] >> 4)
        padding = frames * 1152 - delay - int(samples)
        if not 0 <= padding < 4096:
            return False
        f.seek(lame + 21)
        f.write(bytes([delay >> 4, ((delay & 15) << 4) | (padding >> 8), padding & 255]))
    return True


def pcm_bytes(block: np.ndarray, pcm: str = "s16le") -> bytes:
    """A float32 block as the PCM an encoder is fed: 16-bit (what the MP3 path feeds) or 32-bit float."""
    return to_int16(block) if pcm == "s16le" else np.asarray(block, dtype="<f4").tobytes()


class SplitEncoder:
    """One file per span of samples, cut exactly at `cuts` (sample positions): a new encoder per span.

    The bytes fed are split on sample boundaries, so the pieces' PCM joined is the PCM fed, sample for
    sample; `paths[i]` is span i's file, [cuts[i], cuts[i+1]) (the last runs to the end)."""

    def __init__(self, fmt: str, paths: list[Path], cuts: list[int], **settings) -> None:
        if len(paths) != len(cuts) or not cuts or cuts[0] != 0:
            raise ValueError("one path per cut, the first cut at sample 0")
        self.fmt, self.paths, self.cuts, self.settings = fmt, paths, cuts, settings
        self.pcm = settings.pop("pcm", "s16le")
        self.width = 2 if self.pcm == "s16le" else 4
        self.position = 0  # samples fed so far
        self.index = -1
        self.current: PcmEncoder | None = None
        self.samples: list[int] = [0] * len(paths)  # fed to each piece

    def _open(self, i: int) -> None:
        if self.current is not None:
            self.current.finish()
        self.index = i
        self.current = PcmEncoder(self.fmt, self.paths[i], pcm=self.pcm, **self.settings)

    @property
    def failed(self) -> bool:
        return self.current is not None and self.current.failed

    def feed(self, data: bytes) -> None:
        n = len(data) // self.width
        at = 0
        while at < n:
            nxt = self.index + 1
            if nxt < len(self.cuts) and self.position + at >= self.cuts[nxt]:
                self._open(nxt)
                continue
            end = self.cuts[nxt] - self.position if nxt < len(self.cuts) else n
            take = min(n, end) - at
            self.current.feed(data[at * self.width : (at + take) * self.width])
            self.samples[self.index] += take
            at += take
        self.position += n

    def finish(self) -> None:
        while self.index + 1 < len(self.cuts):  # spans nothing was fed to (a session shorter than its cuts)
            self._open(self.index + 1)
        if self.current is not None:
            self.current.finish()
            self.current = None

    def abort(self) -> None:
        if self.current is not None:
            self.current.abort()
            self.current = None


def encode_tee(streams: Iterable[dict[str, np.ndarray]], targets: list[tuple[str, object]]) -> None:
    """Feed every block of one render to several encoders at once (the mix is made once for all).

    Each item of `streams` maps a stream name ("mix", "voice", "bed") to its float32 block; each target is
    (stream name, PcmEncoder | SplitEncoder). Every encoder is finished, or on any failure all are killed."""
    try:
        for item in streams:
            cache: dict[tuple[str, str], bytes] = {}
            for name, enc in targets:
                key = (name, enc.pcm)
                if key not in cache:
                    cache[key] = pcm_bytes(item[name], enc.pcm)
                enc.feed(cache[key])
            if any(enc.failed for _, enc in targets):
                break
        for _, enc in targets:
            enc.finish()
    except BaseException:
        for _, enc in targets:
            enc.abort()
        raise

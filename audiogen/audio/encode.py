"""Streaming PCM blocks into the encoder: ffmpeg's LAME in its own process, fed by a writer thread.

Memory stays at a few blocks whatever the session length; the encoder's errors become typed errors.
"""

from __future__ import annotations

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
    # A writer thread feeds the encoder while the next blocks are mixed: the two overlap on two cores.
    # The queue is short, so memory stays at a few blocks whatever the session length.
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def writer() -> None:
        try:
            while (data := pending.get()) is not None:
                if not failure:
                    proc.stdin.write(data)
            proc.stdin.close()
        except BaseException as e:  # BrokenPipe: ffmpeg died; its stderr says why
            failure.append(e)
            while pending.get() is not None:
                pass

    thread = threading.Thread(target=writer, name="mp3-writer", daemon=True)
    thread.start()
    try:
        for block in blocks:
            pending.put(to_int16(block))
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
        if err:
            last = err.splitlines()[-1]
        elif rc == -signal.SIGXFSZ:
            last = "File too large (the file-size limit was reached)"
        else:
            last = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        if rc == -signal.SIGXFSZ or any(s in err for s in ("No space left", "Permission denied", "Not a directory",
                                                            "File too large", "quota")):
            raise OutputError(f"cannot write {out_path}: {last}", path=str(out_path))
        raise RenderError(f"the MP3 encoder failed writing {out_path}: {last}", path=str(out_path))

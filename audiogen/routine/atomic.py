"""Atomic file writes: a temp file in the same folder, fsynced, then renamed over the target.

While it is being written, a temp file is held under an exclusive flock; a temp file nobody holds is
an orphan of a killed build, and `sweep_orphans` removes it without touching another live build's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from audiogen.routine.errors import AudiogenError, OutputError

PART_SUFFIX = ".part"


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once, at import (in the main thread): os.umask can only be read by setting it, and the process-wide
#: umask of 0 in between would give another thread's new folders and files mode 0o777/0o666.
_UMASK = _read_umask()


def _umask() -> int:
    return _UMASK


def _locked_temp(target: Path, suffix: str) -> tuple[int, str]:
    """A new temp file beside `target`, created and flocked: (fd, path).

    Between mkstemp and flock a concurrent `sweep_orphans` may take the unlocked file for an orphan and
    delete it; the file we then lock is no longer at `path`, so it is checked and, if gone, made again.
    """
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + PART_SUFFIX, dir=target.parent)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # "in use": sweep_orphans leaves it alone
            try:
                st = os.stat(tmp)
            except FileNotFoundError:
                st = None
            mine = os.fstat(fd)
            if st is not None and (st.st_ino, st.st_dev) == (mine.st_ino, mine.st_dev):
                return fd, tmp
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # swept under us: try a new name
    raise OSError(errno.EAGAIN, "temp files keep disappearing (another process removes them)")


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target`, on any failure it is removed.

    Readers never see a half-written target: either the old file or the complete new one.
    """
    target = Path(target)
    fd = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _locked_temp(target, suffix)
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError as e:
        if fd is not None:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise OutputError(f"cannot write to {target.parent}: {e.strerror or e}", path=str(target),
                          hint=os_error_hint(e)) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}", path=str(target),
                          hint=os_error_hint(e)) from None
    except AudiogenError as e:  # the writer's own error about the temp file is about the target for the user
        _retarget(e, tmp_path, target)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        os.close(fd)


def _retarget(e: AudiogenError, tmp: Path, target: Path) -> None:
    """Name `target` instead of the hidden temp file in an error (nobody can find the temp file later)."""
    if e.path == str(tmp):
        e.path = str(target)
    if str(tmp) in e.message:
        e.message = e.message.replace(str(tmp), str(target))
        e.args = (e.message,)
    if e.hint == "check that the file exists and is writable":  # true of the temp file, not of the target
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        e.hint = os_error_hint(cause) if cause is not None else None


def os_error_hint(e: OSError) -> str | None:
    return {
        errno.ENOSPC: "the disk is full: free some space and build again (nothing half-written was kept)",
        errno.EDQUOT: "the disk quota is used up: free some space and build again",
        errno.EROFS: "the folder is on a read-only file system: choose another output folder with -o",
        errno.EACCES: "no permission to write there: choose another output folder with -o",
        errno.ENOTDIR: "part of that path is a file, not a folder",
        errno.EFBIG: "the file system refused a file that large",
    }.get(e.errno)


def sweep_orphans(folder: Path) -> int:
    """Remove temp files left by killed writers in `folder` (never one a live writer holds)."""
    removed = 0
    try:
        candidates = list(Path(folder).glob(f".*{PART_SUFFIX}"))
    except OSError:
        return 0
    for p in candidates:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # someone is writing it
        try:
            p.unlink()
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))

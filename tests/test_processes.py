"""When `audiogen build` returns, no process it started is still alive: not its synthesis workers, not the
forkserver or resource tracker multiprocessing started for them, not an ffmpeg encoder; after a normal
build, a failed one, and Ctrl-C during narration."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Distinct sentences, so every step is a clip to synthesise on a cold cache (espeak's pool starts from
#: `pool_min_clips` = 16 missing clips).
WORDS = ["palms", "temples", "jaw", "cheeks", "brow", "neck", "shoulders", "chin", "ears", "scalp"]
#: How long a process of the build may take to vanish after the build returned: one that has been reaped
#: or told to exit is gone within milliseconds; one that stays is the bug.
GRACE_S = 5.0


def routine(steps: int, extra: str = "") -> str:
    lines = ["title: Many Phrases", "voice: {engine: espeak}", "cue: none", "steps:"]
    for i in range(steps):
        lines += [f"  - title: Step {i + 1}",
                  f"    say: Step {i + 1}, gently press your {WORDS[i % len(WORDS)]} {i + 1} times.",
                  "    hold: 1s"]
    return "\n".join(lines) + "\n" + extra


def start(src: Path, tmp_path: Path, marker: str) -> subprocess.Popen:
    """The build in its own session (so its process group and session id are its pid), marked."""
    env = {**os.environ, "AUDIOGEN_OFFLINE": "1", "AUDIOGEN_CACHE_DIR": str(tmp_path / "cache"),
           "AUDIOGEN_WORKERS": "2", "PYTHONPATH": str(ROOT), "AUDIOGEN_TEST_MARKER": marker}
    return subprocess.Popen([sys.executable, "-m", "audiogen", "build", str(src), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            start_new_session=True)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, session) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid, pgrp, session = raw[raw.rindex(")") + 2:].split()[:4]
    return state, int(ppid), int(pgrp), int(session)


def _marked(pid: int, marker: str) -> bool:
    try:
        return f"AUDIOGEN_TEST_MARKER={marker}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return cmd[:120]


class Watcher:
    """Notes the command line of each of the build's processes while it runs (a process that has exited
    has none left to show when a failure is reported)."""

    def __init__(self, proc: subprocess.Popen, marker: str) -> None:
        self.proc, self.marker, self.seen = proc, marker, {}
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while self.proc.poll() is None:
            for pid in workers_of(self.proc.pid, self.marker):
                if pid not in self.seen and (cmd := _describe(pid)):
                    self.seen[pid] = cmd
            time.sleep(0.02)

    def stop(self) -> None:
        self._thread.join(5)


def started_by(root: int, marker: str) -> list[int]:
    """Live processes of the build: in its process group or session, or carrying its marker (a process
    that moved to another group still inherited the environment)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        st = _stat(pid)
        if st is None or st[0] in ("Z", "X"):  # a zombie has exited: it only waits to be reaped
            continue
        if root in (st[2], st[3]) or _marked(pid, marker):
            found.append(pid)
    return found


def workers_of(root: int, marker: str) -> list[int]:
    """The build's processes that are not the build itself: workers, forkserver, resource tracker."""
    return [pid for pid in started_by(root, marker) if pid != root]


def orphans(root: int) -> list[int]:
    """The build's processes that were reparented to this process (the subreaper) when it exited:
    alive or already exited, each of them outlived the build."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != root:
            st = _stat(int(entry))
            if st is not None and st[1] == os.getpid() and root in (st[2], st[3]):
                found.append(int(entry))
    return found


def assert_none_left(proc: subprocess.Popen, marker: str, seen: dict[int, str] | None = None) -> None:
    """Nothing the build started outlived it (call right after the build was reaped).

    Two ways to see one: it is alive now (in the build's group or session, or marked), or it was
    reparented to this test when the build exited (the `subreaper` fixture) — the second also catches one
    that exits a few milliseconds after the build, as the forkserver did, which a look at /proc can miss.
    A process the build waited for is gone by the time the build returns. The message says how long
    each took to go (polled up to GRACE_S; whatever stays longer is killed); orphans are reaped here."""
    left = {pid: f"{pid}: {_describe(pid) or (seen or {}).get(pid, '?')}"
            for pid in sorted(set(started_by(proc.pid, marker)) | set(orphans(proc.pid)))}
    # A short-lived ffmpeg that had already exited when its worker was killed on a starved machine arrives
    # here as a zombie: it used nothing after the build and is reaped at once, so it is not a survivor.
    # multiprocessing's helpers are, however briefly they lasted: they were the bug this test is about.
    for pid in list(left):
        st = _stat(pid)
        if (st is None or st[0] in ("Z", "X")) and "multiprocessing" not in left[pid] \
                and ("ffmpeg" in left[pid] or left[pid].endswith(": ?")):  # unseen: it lived only an instant
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            del left[pid]
    if not left:
        return
    t0 = time.monotonic()
    gone: dict[int, float] = {}
    while len(gone) < len(left) and time.monotonic() - t0 < GRACE_S:
        for pid in set(left) - set(gone):
            st = _stat(pid)
            if st is None or st[0] in ("Z", "X"):
                gone[pid] = time.monotonic() - t0
        time.sleep(0.005)
    for pid in left:
        if pid not in gone:  # leave nothing running after the test either
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(pid, 0)  # an orphan of the build is this process's child now
        except ChildProcessError:
            pass
    listing = "\n".join(f"{what} -- " + (f"gone {gone[pid] * 1000:.0f} ms later" if pid in gone
                                         else f"still alive after {GRACE_S} s")
                        for pid, what in left.items())
    raise AssertionError(f"outlived the build:\n{listing}")


_PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def marker() -> str:
    return uuid.uuid4().hex


@pytest.fixture(autouse=True)
def subreaper():
    """Make this process the reaper of the build's orphans (Linux), so none can go unseen."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    try:
        yield
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def run(src: Path, tmp_path: Path, marker: str) -> subprocess.CompletedProcess:
    proc = start(src, tmp_path, marker)
    watcher = Watcher(proc, marker)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    watcher.stop()
    assert_none_left(proc, marker, watcher.seen)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_normal_build_leaves_no_process_behind(tmp_path, marker):
    src = tmp_path / "many.yaml"
    src.write_text(routine(20))
    res = run(src, tmp_path, marker)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "many-phrases.mp3").exists()


def test_a_failed_build_leaves_no_process_behind(tmp_path, marker):
    """The build fails after narration (a background that is not audio): the pool did run."""
    fake = tmp_path / "notes.mp3"
    fake.write_text("these are my notes, not audio\n" * 20)
    src = tmp_path / "many.yaml"
    src.write_text(routine(20, f"background: {{track: {fake.name}}}\n"))
    res = run(src, tmp_path, marker)
    assert res.returncode == 1, res.stderr
    assert f"cannot decode sound file {fake}" in res.stderr + res.stdout
    assert (tmp_path / "cache").exists() and any((tmp_path / "cache").rglob("*.wav"))  # it narrated


def test_ctrl_c_during_narration_leaves_no_process_behind(tmp_path, marker):
    src = tmp_path / "many.yaml"
    src.write_text(routine(150))
    proc = start(src, tmp_path, marker)
    watcher = Watcher(proc, marker)
    try:
        deadline = time.monotonic() + 60
        while not workers_of(proc.pid, marker):  # the pool is running (forkserver, workers)
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pool never started"
            time.sleep(0.01)
        time.sleep(0.3)  # the workers have started narrating
        assert proc.poll() is None, "the build finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    watcher.stop()
    assert_none_left(proc, marker, watcher.seen)

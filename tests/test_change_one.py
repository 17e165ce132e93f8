"""Changing one session of a library (issue 16, item 3): the indexes re-serialise only what changed, and
write the same bytes as rendering everything afresh. Counted (calls of the serialisers), never timed."""

from __future__ import annotations

import json
import os

import pytest

import audiogen.publish.feed as feed
from audiogen.publish.feed import chapters_file, chapters_json
from audiogen.publish.indexes import write_indexes
from audiogen.publish.sessions import collect_sessions
from tests.test_indexes import ALBUM, AUTHOR, add_session


@pytest.fixture
def serialised(monkeypatch):
    """The chapters files serialised since the last call (by the session's slug)."""
    slugs: list[str] = []
    real = feed.chapters_json

    def spy(session):
        slugs.append(session["slug"])
        return real(session)

    monkeypatch.setattr(feed, "chapters_json", spy)

    def taken() -> list[str]:
        out = sorted(slugs)
        slugs.clear()
        return out

    return taken


def fresh_chapters(out, slug: str) -> str:
    session = next(s for s in collect_sessions(out) if s["slug"] == slug)
    return json.dumps(chapters_json(session), indent=1, ensure_ascii=False) + "\n"


def test_unchanged_chapters_files_are_not_serialised_again(tmp_path, serialised):
    out = tmp_path / "out"
    for i, slug in enumerate(("a", "b", "c")):
        add_session(out, slug, f"Session {slug}", track=i + 1, chapters=[("Intro", 0), (f"Step {slug}", 900)])
    write_indexes(out, ALBUM, AUTHOR)
    assert serialised() == ["a", "b", "c"]
    feed_bytes = (out / "feed.xml").read_bytes()

    write_indexes(out, ALBUM, AUTHOR)  # nothing changed: no chapters file serialised, none rewritten
    assert serialised() == [] and (out / "feed.xml").read_bytes() == feed_bytes

    add_session(out, "b", "Session b", track=2, chapters=[("Intro", 0), ("Changed", 1100)])
    write_indexes(out, ALBUM, AUTHOR)
    assert serialised() == ["b"]
    assert (out / chapters_file({"slug": "b"})).read_text("utf-8") == fresh_chapters(out, "b")
    assert [c["title"] for c in json.loads((out / "b.chapters.json").read_text())["chapters"]] == ["Intro", "Changed"]

    (out / "a.chapters.json").unlink()  # a deleted file is written again
    (out / "c.chapters.json").write_text("edited by hand\n")  # and one edited by hand
    write_indexes(out, ALBUM, AUTHOR)
    assert serialised() == ["a", "c"]
    for slug in ("a", "b", "c"):
        assert (out / f"{slug}.chapters.json").read_text("utf-8") == fresh_chapters(out, slug)


def test_a_memo_without_chapters_writes_the_same_files(tmp_path, serialised):
    out = tmp_path / "out"
    add_session(out, "a", "Session a", chapters=[("Intro", 0), ("Two", 800)])
    write_indexes(out, ALBUM, AUTHOR)
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".audiogen-index.json"}
    memo = out / ".audiogen-index.json"
    data = json.loads(memo.read_text("utf-8"))
    assert "a.chapters.json" in data["chapters"]
    del data["chapters"]  # a memo an earlier audiogen wrote
    memo.write_text(json.dumps(data))
    serialised()
    write_indexes(out, ALBUM, AUTHOR)
    assert serialised() == ["a"]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".audiogen-index.json"} == first
    os.utime(out / "a.chapters.json", ns=(1, 1))  # touched: its stat no longer matches, written again
    write_indexes(out, ALBUM, AUTHOR)
    assert serialised() == ["a"]


def test_the_indexes_stat_through_one_listing(tmp_path, monkeypatch):
    """Rewriting the indexes of an unchanged folder looks at its files through one listing: the `Path.stat`
    calls do not grow with the sessions (each sidecar, MP3, cover and thumbnail was stat'ed up to three times)."""
    from pathlib import Path

    calls: list[str] = []
    real = Path.stat

    def spy(self, *a, **k):
        calls.append(self.name)
        return real(self, *a, **k)

    def count(n: int) -> int:
        out = tmp_path / f"out{n}"
        for i in range(n):
            add_session(out, f"s{i}", f"Session {i}", track=i + 1)
        write_indexes(out, ALBUM, AUTHOR)
        monkeypatch.setattr(Path, "stat", spy)
        calls.clear()
        write_indexes(out, ALBUM, AUTHOR)
        monkeypatch.setattr(Path, "stat", real)
        return len([c for c in calls if c.startswith("s")])

    assert count(2) == count(5) == 0


def test_symlinked_files_are_listed_as_their_targets(tmp_path):
    out = tmp_path / "out"
    add_session(out, "a", "Session a", track=1)
    add_session(out, "b", "Session b", track=2)
    real = tmp_path / "elsewhere.mp3"
    (out / "b.mp3").rename(real)
    (out / "b.mp3").symlink_to(real)  # an MP3 that is a symlink to a file: listed, with the file's size
    (out / "a.png").unlink()
    (out / "a.png").symlink_to(tmp_path / "missing.png")  # a dangling cover: dropped, as a missing one is
    write_indexes(out, ALBUM, AUTHOR)
    sessions = {s["slug"]: s for s in collect_sessions(out)}
    assert sessions["b"]["size_bytes"] == real.stat().st_size and sessions["a"]["cover"] is None
    assert f'length="{real.stat().st_size}"' in (out / "feed.xml").read_text("utf-8")
    assert "a.png" not in (out / "sw.js").read_text("utf-8") and "b.png" in (out / "sw.js").read_text("utf-8")


def test_routine_files_lists_what_rglob_found(tmp_path):
    """The walk with one scandir per folder lists the files the earlier `sorted(rglob("*"))` walk listed, in its
    order: hidden files and folders, audiogen.yaml, folders named *.yaml and dangling symlinks left out,
    symlinked files followed, symlinked folders not entered."""
    from pathlib import Path

    from audiogen.routine.walk import LIBRARY_FILE, routine_files

    def reference(folder: Path) -> list[Path]:
        return [p for p in sorted(folder.rglob("*"))
                if p.suffix.lower() in (".yaml", ".yml") and p.name != LIBRARY_FILE and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(folder).parts)]

    lib = tmp_path / "lib"
    for d in ("a", "a-b", ".hidden", "B", "a/deep", "d.yaml"):
        (lib / d).mkdir(parents=True, exist_ok=True)
    for f in ("x.yaml", "y.YML", "a/1.yaml", "a-b/2.yaml", ".hidden/3.yaml", ".h.yaml", "audiogen.yaml",
              "a/audiogen.yaml", "B/z.yml", "a/deep/q.yaml", "n.txt", ".yaml", "a.b.yaml"):
        (lib / f).write_text("title: x\n")
    (lib / "link").symlink_to(lib / "a")
    (lib / "lx.yaml").symlink_to(lib / "x.yaml")
    (lib / "dangling.yaml").symlink_to(tmp_path / "missing.yaml")
    got = routine_files(lib)
    assert got == reference(lib)
    assert [p.relative_to(lib).as_posix() for p in got] == [
        "B/z.yml", "a/1.yaml", "a/deep/q.yaml", "a-b/2.yaml", "a.b.yaml", "lx.yaml", "x.yaml", "y.YML"]

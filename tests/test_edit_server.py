"""The editor's server over plain HTTP: the token, Host and Origin checks, nothing outside the routine's
folder, saving verbatim with a guard against a file changed on disk, the same messages as `check`, and
previews and builds heard through the clip cache."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import imageio_ffmpeg
import pytest
from click.testing import CliRunner

from audiogen.cli import cli
from audiogen.edit.server import open_editor
from audiogen.edit.work import text_hash

ROUTINE = """\
# A comment the editor must keep.
title: Quick Test
voice:
  engine: espeak
cue: none
steps:
  - title: One
    say: Breathe in slowly.
    hold: 1s
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUDIOGEN_OFFLINE", "1")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "quick.yaml").write_text(ROUTINE, "utf-8")
    (tmp_path / "secret.yaml").write_text("title: not yours\n", "utf-8")
    return lib


@pytest.fixture
def server(folder):
    s = open_editor(folder / "quick.yaml", offline=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.shutdown()
    s.server_close()


def call(server, method: str, path: str, body: dict | None = None, *, token: str | None = "ok",
         headers: dict | None = None, raw: bytes | None = None):
    port = server.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Host": f"127.0.0.1:{port}"}
    if token == "ok":
        h["X-Audiogen-Token"] = server.token
    elif token is not None:
        h["X-Audiogen-Token"] = token
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    payload = r.read()
    conn.close()
    try:
        return r.status, json.loads(payload), r
    except ValueError:
        return r.status, payload, r


def wait_job(server, job: dict) -> dict:
    for _ in range(1200):
        if job["state"] != "running":
            return job
        time.sleep(0.1)
        job = call(server, "GET", f"/api/job?id={job['id']}")[1]
    raise AssertionError("job did not finish")


# -- the gate ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/editor.js", "/api/state", "/api/file?path=quick.yaml"])
def test_every_request_needs_the_token(server, path):
    assert call(server, "GET", path, token=None)[0] == 403
    assert call(server, "GET", path, token="guessed")[0] == 403
    assert call(server, "GET", path)[0] == 200


def test_the_token_in_the_url_opens_the_page(server):
    status, body, r = call(server, "GET", f"/?token={server.token}", token=None)
    assert status == 200 and b"<textarea" in body and server.token.encode() in body
    assert "script-src 'self'" in r.getheader("Content-Security-Policy")
    assert r.getheader("Referrer-Policy") == "no-referrer"  # the token does not leak to other sites


def test_a_save_without_the_token_writes_nothing(server, folder):
    status = call(server, "POST", "/api/save", {"path": "quick.yaml", "text": "title: x\n",
                                                "hash": text_hash(ROUTINE)}, token=None)[0]
    assert status == 403
    assert (folder / "quick.yaml").read_text("utf-8") == ROUTINE


@pytest.mark.parametrize("host", ["evil.example:80", "evil.example", "192.168.1.10", "localhost.evil.example"])
def test_a_foreign_host_is_misdirected(server, host):
    assert call(server, "GET", "/api/state", headers={"Host": host})[0] == 421


def test_loopback_names_are_this_server(server):
    port = server.server_address[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert call(server, "GET", "/api/state", headers={"Host": host})[0] == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
def test_a_foreign_origin_is_refused(server, folder, origin):
    body = {"path": "quick.yaml", "text": "title: x\n", "hash": text_hash(ROUTINE)}
    assert call(server, "POST", "/api/save", body, headers={"Origin": origin})[0] == 403
    assert (folder / "quick.yaml").read_text("utf-8") == ROUTINE


def test_the_own_origin_is_accepted(server):
    port = server.server_address[1]
    status, data, _ = call(server, "POST", "/api/check", {"path": "quick.yaml", "text": ROUTINE},
                           headers={"Origin": f"http://127.0.0.1:{port}"})
    assert status == 200 and data["ok"]


def test_a_cross_site_fetch_is_refused(server):
    assert call(server, "GET", "/api/state", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403


def test_a_form_post_is_refused(server, folder):
    """A page elsewhere can post a form without a preflight, but not as application/json."""
    status = call(server, "POST", "/api/save", raw=b"path=quick.yaml&text=x",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})[0]
    assert status == 415
    assert (folder / "quick.yaml").read_text("utf-8") == ROUTINE


def test_the_server_listens_on_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"


# -- nothing outside the folder -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../secret.yaml", "..%2Fsecret.yaml", "/etc/passwd", "sub/../../secret.yaml",
                                  ".hidden.yaml", "audiogen.yaml", "quick.txt", "a\\..\\secret.yaml"])
def test_reading_outside_the_folder_is_refused(server, name):
    from urllib.parse import quote

    status, data, _ = call(server, "GET", f"/api/file?path={quote(name, safe='%')}")
    assert status == 403
    assert "not yours" not in json.dumps(data)


def test_a_symlink_out_of_the_folder_is_refused(server, folder):
    os.symlink(folder.parent / "secret.yaml", folder / "link.yaml")
    status, data, _ = call(server, "GET", "/api/file?path=link.yaml")
    assert status == 403 and "not yours" not in json.dumps(data)
    assert call(server, "POST", "/api/save", {"path": "link.yaml", "text": "x", "hash": ""})[0] == 403
    assert (folder.parent / "secret.yaml").read_text("utf-8") == "title: not yours\n"


def test_writing_outside_the_folder_is_refused(server, folder):
    for name in ("../escape.yaml", "/tmp/escape.yaml", "../secret.yaml"):
        status = call(server, "POST", "/api/save", {"path": name, "text": "title: x\n", "hash": ""})[0]
        assert status == 403
    assert not (folder.parent / "escape.yaml").exists()
    assert (folder.parent / "secret.yaml").read_text("utf-8") == "title: not yours\n"


@pytest.mark.parametrize("path", ["/media/../lib/quick.yaml", "/media/%2e%2e/%2e%2e/etc/passwd", "/media/.x"])
def test_media_outside_the_work_folder_is_refused(server, path):
    assert call(server, "GET", path)[0] in (403, 404)


# -- saving -------------------------------------------------------------------------------------------
def test_save_writes_the_text_verbatim(server, folder):
    mine = ROUTINE.replace("hold: 1s", "hold: 2s   # longer")
    status, data, _ = call(server, "POST", "/api/save", {"path": "quick.yaml", "text": mine,
                                                         "hash": text_hash(ROUTINE)})
    assert status == 200 and data["hash"] == text_hash(mine)
    assert (folder / "quick.yaml").read_text("utf-8") == mine
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_a_file_changed_on_disk_is_not_overwritten(server, folder):
    theirs = ROUTINE.replace("Breathe in slowly.", "Breathe out slowly.")
    (folder / "quick.yaml").write_text(theirs, "utf-8")
    status, data, _ = call(server, "POST", "/api/save", {"path": "quick.yaml", "text": ROUTINE + "# mine\n",
                                                         "hash": text_hash(ROUTINE)})
    assert status == 409
    assert (folder / "quick.yaml").read_text("utf-8") == theirs
    assert "+    say: Breathe out slowly." in data["diff"].splitlines()
    assert "-    say: Breathe in slowly." in data["diff"].splitlines()
    assert data["disk_hash"] == text_hash(theirs)


# -- the same messages as `check` ---------------------------------------------------------------------
def test_errors_are_checks_messages_at_their_line(server, folder):
    bad = ROUTINE.replace("    hold: 1s\n", "    hold: 1s\n    holdd: 2s\n")
    status, data, _ = call(server, "POST", "/api/check", {"path": "quick.yaml", "text": bad})
    assert status == 200 and not data["ok"] and data["plan"] is None
    (folder / "quick.yaml").write_text(bad, "utf-8")
    printed = CliRunner().invoke(cli, ["check", str(folder / "quick.yaml")]).output
    assert [e["text"] for e in data["errors"]] == [printed.strip().removeprefix("error: ")]
    assert (data["errors"][0]["line"], data["errors"][0]["column"]) == (10, 5)


def test_the_checked_plan_is_audiogen_plans(server, folder):
    data = call(server, "POST", "/api/check", {"path": "quick.yaml", "text": ROUTINE})[1]
    plan = json.loads(CliRunner().invoke(cli, ["plan", "--json", str(folder / "quick.yaml")]).output)
    assert data["plan"] == plan


# -- hearing it ---------------------------------------------------------------------------------------
def _decoded_seconds(data: bytes) -> float:
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", "pipe:0", "-f", "s16le", "-ac", "1",
                          "-ar", "8000", "pipe:1"], input=data, capture_output=True, check=True)
    return len(run.stdout) / 2 / 8000


def test_a_selection_is_synthesised_into_the_cache_and_served(server, tmp_path):
    selected = "  - say: Hello [pause 1s]  # a comment\n    there."  # lines of YAML: only the words are spoken
    status, job, _ = call(server, "POST", "/api/preview", {"path": "quick.yaml", "text": ROUTINE,
                                                           "selection": selected})
    assert status == 202
    job = wait_job(server, job)
    assert job["state"] == "done", job
    assert job["result"]["texts"] == ["Hello there."]
    clip = job["result"]["clips"][0]
    assert os.path.exists(clip) and clip.startswith(str(tmp_path / "cache"))
    status, audio, r = call(server, "GET", job["result"]["url"], token=None)
    assert status == 200 and r.getheader("Content-Type") == "audio/wav"
    assert _decoded_seconds(audio) == pytest.approx(job["result"]["length_ms"] / 1000, abs=0.05)
    assert _decoded_seconds(audio) > 0.3


def test_a_bad_preview_request_is_refused(server):
    assert call(server, "POST", "/api/preview", {"path": "quick.yaml", "text": ROUTINE})[0] == 400


@pytest.mark.slow  # renders a session
def test_build_plays_the_session_with_its_chapters_and_byte_ranges(server):
    status, job, _ = call(server, "POST", "/api/build", {"path": "quick.yaml"})
    assert status == 202
    job = wait_job(server, job)
    assert job["state"] == "done", job
    result = job["result"]
    assert [c["title"] for c in result["chapters"]] == ["One"]
    status, audio, _ = call(server, "GET", result["url"], token=None)
    assert status == 200
    assert _decoded_seconds(audio) == pytest.approx(result["length_ms"] / 1000, abs=0.2)
    status, part, r = call(server, "GET", result["url"], token=None, headers={"Range": "bytes=10-19"})
    assert status == 206 and part == audio[10:20] and r.getheader("Content-Range") == f"bytes 10-19/{len(audio)}"


# -- templates ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("template", ["breathing", "stretch", "massage", "workout", "meditation"])
def test_new_from_a_template_checks_clean(tmp_path, template):
    run = CliRunner().invoke(cli, ["new", "My Session", "-o", str(tmp_path), "--template", template])
    assert run.exit_code == 0, run.output
    path = tmp_path / "my-session.yaml"
    text = path.read_text("utf-8")
    assert 'title: "My Session"' in text and "# " in text
    checked = CliRunner().invoke(cli, ["check", str(path)])
    assert checked.exit_code == 0 and "warning" not in checked.output, checked.output


def test_an_unknown_template_is_refused(tmp_path):
    run = CliRunner().invoke(cli, ["new", "x", "-o", str(tmp_path), "--template", "yoga"])
    assert run.exit_code == 2 and not list(tmp_path.iterdir())


def test_the_editor_offers_the_templates(server):
    state = call(server, "GET", "/api/state")[1]
    assert state["templates"] == ["breathing", "stretch", "massage", "workout", "meditation"]
    data = call(server, "GET", "/api/template?name=massage&title=Face%20time&file=quick.yaml")[1]
    assert 'title: "Face time"' in data["text"] and "stop if anything hurts" in data["text"]
    assert call(server, "GET", "/api/template?name=../../etc/passwd")[0] == 404


def test_audiogen_edit_prints_a_loopback_url_with_the_token(folder):
    import re
    import signal
    import sys
    import urllib.request

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "audiogen", "edit", "--no-browser", str(folder / "quick.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line).group(0)
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"<textarea" in r.read()
        bare = url.split("?")[0] + "api/state"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bare, timeout=30)
        assert refused.value.code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped editing" in out


def test_a_library_folder_lists_its_routines_and_its_defaults_apply(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUDIOGEN_OFFLINE", "1")
    lib = tmp_path / "facial-massage"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "facial-massage", lib)
    s = open_editor(lib, offline=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        state = call(s, "GET", "/api/state")[1]
        assert state["files"] == sorted(p.name for p in lib.glob("*.yaml") if p.name != "audiogen.yaml")
        assert state["first"] == state["files"][0]
        assert call(s, "GET", "/api/file?path=audiogen.yaml")[0] == 403  # the library's settings are not a routine
        for name in state["files"][:2]:
            opened = call(s, "GET", f"/api/file?path={name}")[1]
            data = call(s, "POST", "/api/check", {"path": name, "text": opened["text"]})[1]
            plan = json.loads(CliRunner().invoke(cli, ["plan", "--json", str(lib / name)]).output)
            assert data["plan"] == plan
    finally:
        s.shutdown()
        s.server_close()
    assert not s.workdir.exists()  # previews and builds are gone with the server


def test_a_new_file_is_written_on_the_first_save_and_not_over_one_made_meanwhile(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    target = tmp_path / "fresh.yaml"
    s = open_editor(target, offline=True)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        opened = call(s, "GET", "/api/file?path=fresh.yaml")[1]
        assert opened["text"] == "" and opened["new"] and not target.exists()
        template = call(s, "GET", "/api/template?name=breathing&title=Fresh&file=fresh.yaml")[1]["text"]
        assert call(s, "POST", "/api/save", {"path": "fresh.yaml", "text": template, "hash": None})[0] == 200
        assert target.read_text("utf-8") == template
        # a second page that also opened it as new does not overwrite what the first one saved
        status, data, _ = call(s, "POST", "/api/save", {"path": "fresh.yaml", "text": "title: x\n", "hash": None})
        assert status == 409 and target.read_text("utf-8") == template
    finally:
        s.shutdown()
        s.server_close()


def test_a_missing_folder_is_a_clear_error(tmp_path):
    from audiogen.routine.errors import OutputError

    with pytest.raises(OutputError, match="no such file or folder"):
        open_editor(tmp_path / "nowhere" / "x.yaml")

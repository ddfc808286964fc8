"""The `clipora process` command as a user runs it."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[2]


def clipora(*args: str, tmp: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp / "cache"), COLUMNS="120", **extra_env)
    return subprocess.run([sys.executable, "-m", "clipora", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--num-clips", "11"], "numClips"),
        (["--num-clips", "0"], "1 to 10"),
        (["--clip-length", "huge"], '"short", "medium" or "long"'),
        (["--aspect-ratio", "2:3"], "aspectRatio"),
        (["--caption-preset", "comic"], "captionPreset"),
        (["--trim-start", "5", "--trim-end", "2"], "trimEnd must be greater than trimStart"),
        (["--language", "xx"], "ISO 639-1"),
        (["--language", "ru"], "speech model is English-only"),  # the default tiny.en
    ],
)
def test_bad_option_values_name_the_field(media_dir, tmp_path, flags, words):
    r = clipora("process", str(media_dir / "face_static.mp4"), "-o", "out", *flags, tmp=tmp_path)
    assert r.returncode == 2
    assert words in r.stderr
    assert not (tmp_path / "out").exists()


def test_bad_input_file_is_a_clear_error(media_dir, tmp_path):
    r = clipora("process", str(media_dir / "not_a_video.mp4"), "-o", "out", "--quiet", tmp=tmp_path)
    assert r.returncode == 2
    assert "error:" in r.stderr and "not a readable video" in r.stderr
    assert "Traceback" not in r.stderr


def test_serve_refuses_to_start_with_unusable_provider_settings(tmp_path):
    r = clipora("serve", "--port", "1", "--data-dir", str(tmp_path / "data"), tmp=tmp_path,
                CLIPORA_MOMENTS_PROVIDER="bogus")
    assert r.returncode == 2
    assert "CLIPORA_MOMENTS_PROVIDER must be auto, local, gemini or openai" in " ".join(r.stderr.split())


def test_cuda_backend_request_without_a_gpu_is_refused(media_dir, tmp_path):
    r = clipora("process", str(media_dir / "face_static.mp4"), "-o", "out", "--backend", "cuda", "--quiet",
                tmp=tmp_path)
    assert r.returncode == 2 and "cuda backend unavailable" in r.stderr


@pytest.mark.slow
class _Receiver(http.server.BaseHTTPRequestHandler):
    """Records each POST (headers, body) and answers 200."""

    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_process_writes_clips_and_prints_a_summary(media_dir, tmp_path):
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = receiver.server_address[1]
    secret = "whsec_" + base64.b64encode(b"c" * 24).decode()
    try:
        r = clipora("process", str(media_dir / "face_static.mp4"), "-o", "out", "--mode", "none",
                    "--trim-end", "3", "--caption-preset", "karaoke", "--aspect-ratio", "1:1",
                    "--webhook-url", f"http://127.0.0.1:{port}/hook", "--webhook-secret", secret, tmp=tmp_path,
                    CLIPORA_URL_ALLOWLIST="127.0.0.1", CLIPORA_URL_PORTS=f"80,443,{port}")
    finally:
        receiver.shutdown()
    assert r.returncode == 0, r.stderr
    # the job's end, signed with the given secret (Standard Webhooks), once
    [(headers, body)] = _Receiver.got
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "job.completed" and event["data"]["clipCount"] == 1
    assert event["data"]["manifestUrl"] == (tmp_path / "out" / "manifest.json").resolve().as_uri()
    assert "webhook job.completed delivered" in r.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["clip_01.ass", "clip_01.jpg", "clip_01.mp4", "clip_01.srt",
                                                      "clip_01.vtt", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["clips"][0]["aspectRatio"] == "1:1"
    assert manifest["options"]["captionPreset"] == "karaoke"
    assert "1 clips in" in r.stdout and "01" in r.stdout
    assert "Rendering" in r.stderr  # the progress bars went to stderr

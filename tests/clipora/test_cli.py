"""The `clipora process` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
def test_process_writes_clips_and_prints_a_summary(media_dir, tmp_path):
    r = clipora("process", str(media_dir / "face_static.mp4"), "-o", "out", "--mode", "none",
                "--trim-end", "3", "--caption-preset", "karaoke", "--aspect-ratio", "1:1", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["clip_01.ass", "clip_01.jpg", "clip_01.mp4", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["clips"][0]["aspectRatio"] == "1:1"
    assert manifest["options"]["captionPreset"] == "karaoke"
    assert "1 clips in" in r.stdout and "01" in r.stdout
    assert "Rendering" in r.stderr  # the progress bars went to stderr

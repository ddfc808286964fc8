"""Ingest hardening for both upload paths: the media-bomb corpus (probed in a killable child with
FFmpeg limited to local files and the accepted demuxers) and the file-name corpus (a client's name
never reaches a path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from engine.errors import InvalidMedia
from http_gateway.ingest import probe_untrusted
from tests.http_gateway.conftest import new_account, upload

pytestmark = pytest.mark.timeout(300)
PROBE = (sys.executable, "-m", "stages.media.probe")  # what the app factory wires in
MEDIA = Path(__file__).resolve().parents[1] / "media"
CLIP = MEDIA / "face_static.mp4"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    out = {}
    out["beyond_8k"] = d / "wide.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=8400x16:d=0.2:r=5", "-c:v", "mjpeg", str(out["beyond_8k"]))
    out["streams"] = d / "streams.mkv"
    inputs = ["-f", "lavfi", "-i", "color=c=gray:s=64x64:d=0.5:r=5"]
    for _ in range(17):
        inputs += ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono"]
    ffmpeg(*inputs, *[x for i in range(18) for x in ("-map", str(i))], "-t", "0.5", "-c:v", "mjpeg", "-c:a",
           "pcm_s16le", str(out["streams"]))
    # an HLS playlist and an ffconcat list, named .mp4: with FFmpeg's defaults they would open
    # a URL (the metadata service) or a neighbouring file (someone else's upload)
    out["hls"] = d / "playlist.mp4"
    out["hls"].write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
                          "http://169.254.169.254/latest/meta-data/seg.ts\n#EXT-X-ENDLIST\n")
    shutil.copy(CLIP, d / "neighbour.mp4")
    out["concat"] = d / "concat.mp4"
    out["concat"].write_text("ffconcat version 1.0\nfile 'neighbour.mp4'\n")
    out["empty"] = d / "empty.mp4"
    out["empty"].write_bytes(b"")
    out["text"] = MEDIA / "not_a_video.mp4"
    out["audio"] = MEDIA / "audio_only.m4a"
    return out


@pytest.mark.parametrize(("name", "message"), [
    ("beyond_8k", "8400x16; at most 8K"),
    ("streams", "18 streams; at most 16"),
    ("hls", "not a readable video"),
    ("concat", "MP4, MOV, MKV or WEBM expected"),
    ("empty", "empty"),
    ("text", "not a readable video"),
    ("audio", "no video stream"),
])
async def test_media_bombs_are_refused_with_a_clear_error(bombs, name, message):
    with pytest.raises(InvalidMedia, match=message):
        await probe_untrusted(PROBE, bombs[name], 30, 4 * 3600)


async def test_the_concat_list_would_have_opened_its_neighbour_without_the_format_whitelist(bombs):
    import av

    with av.open(str(bombs["concat"]), options={"protocol_whitelist": "file"}) as c:  # the attack is real
        assert c.format.name == "concat" and c.streams.video


async def test_duration_limit_and_a_good_file():
    info = await probe_untrusted(PROBE, CLIP, 30, 4 * 3600)
    assert (info.width, info.height, info.duration) == (1280, 720, 10.0)
    with pytest.raises(InvalidMedia, match=r"0:00:10 long; the limit is 0:00:05"):
        await probe_untrusted(PROBE, CLIP, 30, 5)


async def test_the_probe_child_is_killed_when_late():
    with pytest.raises(InvalidMedia, match="in time"):
        await probe_untrusted(PROBE, CLIP, 0.01, None)


async def test_uploads_of_bombs_are_400_and_leave_nothing(start_server, bombs):
    server = start_server({"CLIPORA_MAX_DURATION_S": "5"})
    account = await new_account(server.url, "bombs@example.com")
    for path, message in [(bombs["beyond_8k"], "8K"), (bombs["hls"], "not a readable video"),
                          (bombs["streams"], "streams"), (CLIP, "the limit is 0:00:05")]:
        status, body = await upload(server.url, account.key, path)
        assert status == 400 and message in body["error"], body
    assert list((server.data_dir / "uploads").iterdir()) == []
    assert list((server.data_dir / "jobs").iterdir()) == []


NAMES = [
    "../../../../etc/passwd",
    "..\\..\\windows\\system32\\evil.mp4",
    "%2e%2e%2f%2e%2e%2fsecret.mp4",
    # raw NUL/CR/LF cannot cross a header (aiohttp's client refuses to send them); browsers and
    # aiohttp escape them as %00/%0D%0A, which the gateway decodes before it cleans the name
    "a%00b.mp4",
    "line%0D%0AX-Injected: 1.mp4",
    "\u202egnp.mp4",  # right-to-left override: shows as "mp4.png"
    "x" * 1000 + ".mp4",
    "..",
    "/abs/path/clip.mp4",
    "clip .mp4",
]


async def test_the_uploaded_name_never_reaches_a_path(start_server, tmp_path):
    server = start_server()
    account = await new_account(server.url, "names@example.com")
    for name in NAMES:
        status, body = await upload(server.url, account.key, CLIP, filename=name)
        assert status == 200, (name, body)
        shown = body["originalName"]
        assert "/" not in shown and "\\" not in shown and len(shown) <= 255, (name, shown)
        assert not any(ord(c) < 0x20 or c in "\x7f\u202e\x00" for c in shown), (name, shown)
        assert shown not in ("", "..", "."), (name, shown)
        job_dir = server.data_dir / "jobs" / body["jobId"]
        assert sorted(p.name for p in job_dir.iterdir() if p.is_file()) == ["source.mp4"]
        async with aiohttp.ClientSession() as s, s.delete(f"{server.url}/api/jobs/{body['jobId']}",
                                                          headers=account.headers) as r:
            assert r.status == 200
    # nothing was written outside the data folder's own layout
    assert sorted(p.name for p in server.data_dir.iterdir() if not p.name.startswith("clipora.db")) == [
        "jobs", "uploads"]
    assert list((server.data_dir / "uploads").iterdir()) == []
    assert not (tmp_path / "etc").exists() and not (server.data_dir.parent / "secret.mp4").exists()

"""GET /api/clips/{jobId}/{filename} serves a clip's .srt and .vtt with their types, and no other names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from argon2 import PasswordHasher

from engine.types import Word
from http_gateway.app import create_app
from http_gateway.auth import ACCOUNTS
from http_gateway.config import GatewaySettings
from stages.captions import build_caption_track

PASSWORD = "Correct-Horse-7"
VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"
WORDS = [Word(0.2 + 0.4 * i, 0.5 + 0.4 * i, t) for i, t in enumerate("Tom & Jerry <3 cheese, say hi.".split())]


def run(job, source, out_dir, work, bus, cancel):
    """A job that leaves what the pipeline publishes for one clip (real caption files)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for ext in ("mp4", "jpg"):
        (out_dir / f"clip_01.{ext}").write_bytes(b"x" * 100)
    build_caption_track(WORDS, "none", 720, 720, 0.0, 5.0).write_files(out_dir / "clip_01.ass")
    (out_dir / "manifest.json").write_text('{"clipCount": 1, "clips": []}')
    return {"clipCount": 1}


@pytest.fixture
async def finished(aiohttp_client, tmp_path):
    app = create_app(GatewaySettings(data_dir=tmp_path, workers=0), run=run)
    app[ACCOUNTS].hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    client = await aiohttp_client(app)
    origin = {"Origin": f"http://{client.host}:{client.port}"}
    await client.post("/api/auth/signup", json={"email": "cal@example.com", "password": PASSWORD}, headers=origin)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=origin)).json())["key"]
    client.session.cookie_jar.clear()
    form = aiohttp.FormData()
    form.add_field("video", VIDEO.read_bytes(), filename="v.mp4", content_type="video/mp4")
    job_id = (await (await client.post("/api/upload", data=form, headers={"X-API-Key": key})).json())["jobId"]
    for _ in range(200):
        job = await (await client.get(f"/api/jobs/{job_id}", headers={"X-API-Key": key})).json()
        if job["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "completed", job
    return client, {"X-API-Key": key}, job_id, tmp_path / "jobs" / job_id / "out"


async def test_srt_and_vtt_are_served_with_their_content_types(finished) -> None:
    client, auth, job_id, out = finished
    for name, ctype, first in (("clip_01.srt", "application/x-subrip; charset=utf-8", b"1\n00:00:00,200 --> "),
                               ("clip_01.vtt", "text/vtt; charset=utf-8", b"WEBVTT\n"),
                               ("clip_01.ass", "text/x-ssa; charset=utf-8", b"[Script Info]")):
        r = await client.get(f"/api/clips/{job_id}/{name}", headers=auth)
        body = await r.read()
        assert r.status == 200, (name, body)
        assert r.headers["Content-Type"] == ctype
        assert r.headers["Content-Disposition"] == f'inline; filename="{name}"'
        assert r.headers["Cache-Control"] == "private, max-age=31536000, immutable"
        assert body == (out / name).read_bytes() and body.startswith(first)
    vtt = await (await client.get(f"/api/clips/{job_id}/clip_01.vtt", headers=auth)).text()
    assert "&amp;" in vtt and "&lt;3" in vtt and "<00:00:00.600>" in vtt
    r = await client.get(f"/api/clips/{job_id}/clip_01.vtt")  # auth needed like every clip file
    assert r.status == 401


async def test_other_names_are_refused(finished) -> None:
    client, auth, job_id, out = finished
    (out / "clip_01.sub").write_text("x")  # present on disk, still not an artifact
    for name in ("clip_02.srt", "clip_1.srt", "clip_01.SRT", "clip_01.srt.tmp", "clip_01.sub", "clip_01.webvtt",
                 "clip_01.txt", "source.srt", "x.vtt", "clip_01.srt%00", "..%2Fclip_01.vtt"):
        r = await client.get(f"/api/clips/{job_id}/{name}", headers=auth)
        assert r.status == 404, name
        assert set(await r.json()) == {"error"}


def test_the_openapi_document_describes_the_caption_files_and_the_clip_entry(tmp_path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from engine.service import ARTIFACT
    from http_gateway.openapi import build_document
    from http_gateway.routes.clips import CONTENT_TYPES
    from stages.output import build_manifest
    from tests.stages.output.test_manifest import _request

    doc = build_document()
    op = doc["paths"]["/api/clips/{jobId}/{filename}"]["get"]
    filename = next(p for p in op["parameters"] if p["name"] == "filename")
    assert filename["schema"]["pattern"] == ARTIFACT.pattern
    assert {c.split(";")[0] for c in CONTENT_TYPES.values()} <= set(op["responses"]["200"]["content"])
    clip_schema = doc["components"]["schemas"]["Clip"]
    assert {"srtUrl", "vttUrl", "cropPath"} <= set(clip_schema["properties"])
    split = {"t": 0.5, "x": 2, "y": 4, "w": 288, "h": 256, "bottom": {"x": 800, "y": 100, "w": 288, "h": 256}}
    for clip in build_manifest(_request(tmp_path))["clips"]:
        jsonschema.validate(clip, clip_schema)
        jsonschema.validate({**clip, "cropPath": [split]}, clip_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"cropPath": [{"t": 0, "x": 1.5, "y": 0, "w": 2, "h": 2}]}, clip_schema)

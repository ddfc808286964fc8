"""Re-rendering a clip with edits, on the real ``clipora serve``: POST /api/clips/{jobId}/{index}/render.

One job (a 12 s speech clip with captions) is made once; the tests then render its clip again as a
user of the editor would: a tighter window, a corrected word, another caption preset. Checked: the
render is a job of its own whose progress the WebSocket streams, it reuses the job's analysis (no
transcription, no face detection inside the known window), the new clip's files replace the old ones
(kept as clip_01.v1.*), the manifest records the edit and the version, the window is snapped to word
boundaries, the correction is in the captions, edits accumulate, and bad edits, other accounts and a
second render of a clip that is rendering are refused with the spec's errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from tests.http_gateway.conftest import Account, LiveServer, new_account, upload, wait_for_job

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
VIDEO = ROOT / "tests" / "media" / "speech_topics.mp4"
OPTIONS = json.dumps({"mode": "none", "trimEnd": 12, "captionPreset": "beasty", "aspectRatio": "9:16"})


def duration_of(data: bytes, tmp: Path) -> float:
    path = tmp / "probe.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return float(v.duration * v.time_base)


async def get(base: str, key: str, path: str) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as s, s.get(f"{base}{path}", headers={"X-API-Key": key}) as r:
        body = await r.read()
        ctype = r.headers.get("Content-Type", "")
        return r.status, (json.loads(body) if ctype.startswith("application/json") else body), dict(r.headers)


async def post_render(base: str, key: str, job_id: str, index: int, edit: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.post(f"{base}/api/clips/{job_id}/{index}/render", json=edit,
                                                    headers={"X-API-Key": key}) as r:
        return r.status, await r.json()


async def watch(base: str, key: str, job_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/ws?jobId={job_id}",
                                                          headers={"X-API-Key": key}) as ws:
        async for msg in ws:
            messages.append(json.loads(msg.data))
    return messages


@pytest.fixture(scope="module")
def made(live_server: LiveServer) -> dict[str, Any]:
    return asyncio.run(_make(live_server))


async def _make(live_server: LiveServer) -> dict[str, Any]:
    owner = await new_account(live_server.url, "editor@example.com")
    status, body = await upload(live_server.url, owner.key, VIDEO, OPTIONS)
    assert status == 200, body
    job = await wait_for_job(live_server.url, owner.key, body["jobId"], timeout_s=240)
    assert job["status"] == "completed", job
    _, manifest, _ = await get(live_server.url, owner.key, f"/api/clips/{job['id']}")
    _, original, _ = await get(live_server.url, owner.key, f"/api/clips/{job['id']}/clip_01.mp4")
    return {"owner": owner, "job": job["id"], "manifest": manifest, "mp4": original}


async def test_render_again_with_a_trim_a_correction_and_another_preset(live_server: LiveServer, made, tmp_path):
    base, owner, job_id = live_server.url, made["owner"], made["job"]
    status, editor, _ = await get(base, owner.key, f"/api/clips/{job_id}/1/edit")
    assert status == 200, editor
    assert editor["version"] == 1 and editor["edit"] == {} and editor["options"]["captionPreset"] == "beasty"
    words = [w for w in editor["words"] if 2.0 < w["start"] and w["end"] < 10.0]
    assert len(words) >= 8, editor["words"]
    # a window whose edges fall inside words: it must grow out to their edges, never cut them
    first, last = words[1], words[-2]
    start, end = (first["start"] + first["end"]) / 2, (last["start"] + last["end"]) / 2
    fix = words[3]
    edit = {"start": start, "end": end, "captionPreset": "karaoke", "words": [{"index": fix["index"], "text": "Zebra"}]}

    analysis = live_server.data_dir / "jobs" / job_id / "work" / "analysis"
    before = {p.name: p.stat().st_mtime_ns for p in analysis.glob("*.json")}
    status, render = await post_render(base, owner.key, job_id, 1, edit)
    assert status == 200, render
    assert render["parentJobId"] == job_id and render["clipIndex"] == 1
    assert render["wsUrl"] == f"/ws?jobId={render['jobId']}"
    # a second render of the same clip while this one is queued or running: 409
    status, busy = await post_render(base, owner.key, job_id, 1, {"captionPreset": "mozi"})
    assert status == 409 and "rendered already" in busy["error"], busy

    events = await watch(base, owner.key, render["jobId"])
    assert events[-1]["type"] == "completed", events[-3:]
    stages = {e.get("stage") for e in events if e["type"] == "progress"}
    assert "render" in stages
    assert not stages & {"transcribe", "diarize", "audio", "highlights"}, stages  # the job's analysis, reused
    # the job's analysis was read, not made again: every cached result as it was (the edit's plan is new)
    after = {p.name: p.stat().st_mtime_ns for p in analysis.glob("*.json")}
    assert {k: v for k, v in after.items() if k in before} == before and set(after) - set(before) == {"edit_plan.json"}
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0

    status, job, _ = await get(base, owner.key, f"/api/jobs/{render['jobId']}")
    assert job["kind"] == "render" and job["parentJobId"] == job_id and job["status"] == "completed"
    status, listed, _ = await get(base, owner.key, "/api/jobs")
    assert [j["id"] for j in listed["jobs"]] == [job_id]  # renders are listed by their job, not beside it

    status, manifest, _ = await get(base, owner.key, f"/api/clips/{job_id}")
    clip = manifest["clips"][0]
    assert clip["version"] == 2 and clip["edit"]["captionPreset"] == "karaoke"
    assert clip["edit"]["words"] == [{"index": fix["index"], "text": "Zebra"}]
    assert clip["downloadUrl"].endswith("/clip_01.mp4?v=2")
    assert clip["start"] <= first["start"] + 1e-3 and clip["end"] >= last["end"] - 1e-3  # snapped out of the words
    assert clip["start"] >= words[0]["end"] - 1e-3 and clip["end"] <= words[-1]["start"] + 1e-3  # not into the next
    assert "Zebra" in clip["transcript"] and fix["text"] not in clip["transcript"].split()
    assert clip["versions"][0]["version"] == 1 and clip["versions"][0]["downloadUrl"].endswith("/clip_01.v1.mp4")
    assert manifest["clipCount"] == made["manifest"]["clipCount"]

    status, new_mp4, headers = await get(base, owner.key, f"/api/clips/{job_id}/clip_01.mp4")
    assert status == 200 and headers["Cache-Control"] == "private, no-cache"  # its bytes changed once already
    assert abs(duration_of(new_mp4, tmp_path) - clip["duration"]) < 0.1
    assert abs(clip["duration"] - (clip["end"] - clip["start"])) < 0.1
    status, kept, headers = await get(base, owner.key, f"/api/clips/{job_id}/clip_01.v1.mp4")
    assert status == 200 and kept == made["mp4"]
    status, _, headers = await get(base, owner.key, f"/api/clips/{job_id}/clip_01.mp4?v=2")
    assert "immutable" in headers["Cache-Control"]
    status, srt, _ = await get(base, owner.key, f"/api/clips/{job_id}/clip_01.srt")
    assert b"Zebra" in srt
    status, ass, _ = await get(base, owner.key, f"/api/clips/{job_id}/clip_01.ass")
    assert b"\\k" in ass or b"\\K" in ass  # karaoke's sweep tags

    # edits accumulate: only the preset changes now, the trim and the correction stay
    status, second = await post_render(base, owner.key, job_id, 1, {"captionPreset": "mozi",
                                                                    "captionStyle": {"textColor": "#00FF00"}})
    assert status == 200, second
    done = await wait_for_job(base, owner.key, second["jobId"], timeout_s=180)
    assert done["status"] == "completed", done
    status, manifest, _ = await get(base, owner.key, f"/api/clips/{job_id}")
    clip2 = manifest["clips"][0]
    assert clip2["version"] == 3 and clip2["edit"]["captionPreset"] == "mozi"
    assert clip2["edit"]["captionStyle"] == {"textColor": "#00FF00"}  # a brand colour, in the .ass too
    status, ass, _ = await get(base, owner.key, f"/api/clips/{job_id}/clip_01.ass")
    assert b"&H0000FF00" in ass
    assert clip2["edit"]["words"] == clip["edit"]["words"]
    assert (clip2["start"], clip2["end"]) == (clip["start"], clip["end"])
    assert [v["version"] for v in clip2["versions"]] == [1, 2]


async def test_bad_edits_and_other_accounts_are_refused(live_server: LiveServer, made):
    base, owner, job_id = live_server.url, made["owner"], made["job"]
    cases = [
        ({"start": "one"}, "start"),
        ({"captionPreset": "neon"}, "captionPreset"),
        ({"start": 5.0, "end": 5.4}, "at least 1 s"),
        ({"words": [{"index": 10 ** 6, "text": "x"}]}, "does not exist"),
        ({"words": [{"index": 1, "text": ""}]}, "words[0].text"),
        ({"colour": "red"}, "unknown edit field"),
        ({"start": 500.0, "end": 510.0}, "outside"),
    ]
    for edit, says in cases:
        status, body = await post_render(base, owner.key, job_id, 1, edit)
        assert status == 400 and says in body["error"], (edit, body)
    status, body = await post_render(base, owner.key, job_id, 7, {"captionPreset": "mozi"})
    assert status == 404 and "no clip 7" in body["error"]
    async with aiohttp.ClientSession() as s, s.post(f"{base}/api/clips/{job_id}/1/render", data="{nope",
                                                    headers={"X-API-Key": owner.key}) as r:
        assert r.status == 400 and "error" in await r.json()
    other: Account = await new_account(base, "stranger@example.com")
    status, body = await post_render(base, other.key, job_id, 1, {"captionPreset": "mozi"})
    assert status == 403 and body == {"error": "this job belongs to another account"}
    status, body, _ = await get(base, other.key, f"/api/clips/{job_id}/1/edit")
    assert status == 403
    async with aiohttp.ClientSession() as s, s.post(f"{base}/api/clips/{job_id}/1/render",
                                                    json={"captionPreset": "mozi"}) as r:
        assert r.status == 401


def test_the_cli_renders_again_and_downloads_the_new_version(live_server: LiveServer, made, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), CLIPORA_SERVER_URL=live_server.url,
               CLIPORA_API_KEY=made["owner"].key)
    dest = tmp_path / "edited.mp4"
    done = subprocess.run([sys.executable, "-m", "clipora", "rerender", made["job"], "1", "--end", "8.5",
                           "--caption-preset", "none", "-o", str(dest)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "is now version" in done.stdout and dest.stat().st_size > 10_000
    manifest = asyncio.run(get(live_server.url, made["owner"].key, f"/api/clips/{made['job']}"))[1]
    clip = manifest["clips"][0]
    assert clip["edit"]["captionPreset"] == "none" and 8.5 <= clip["end"] < 9.5  # 8.5 s, snapped out of its word
    assert abs(duration_of(dest.read_bytes(), tmp_path) - clip["duration"]) < 0.1
    bad = subprocess.run([sys.executable, "-m", "clipora", "rerender", made["job"], "1", "--word", "oops"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "INDEX=TEXT" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "clipora", "rerender", made["job"], "1", "--caption-preset", "neon"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "captionPreset" in bad.stderr


async def test_deleting_the_job_takes_its_renders_and_versions(live_server: LiveServer, made):
    base, owner, job_id = live_server.url, made["owner"], made["job"]
    status, render = await post_render(base, owner.key, job_id, 1, {"aspectRatio": "1:1"})
    assert status == 200, render
    done = await wait_for_job(base, owner.key, render["jobId"], timeout_s=180)
    assert done["status"] == "completed", done
    status, manifest, _ = await get(base, owner.key, f"/api/clips/{job_id}")
    assert manifest["clips"][0]["aspectRatio"] == "1:1"
    async with aiohttp.ClientSession() as s, s.delete(f"{base}/api/jobs/{job_id}",
                                                      headers={"X-API-Key": owner.key}) as r:
        assert r.status == 200
    for path in (f"/api/jobs/{render['jobId']}", f"/api/clips/{job_id}/clip_01.v1.mp4"):
        status, _, _ = await get(base, owner.key, path)
        assert status == 404, path
    await asyncio.sleep(0)
    assert not (live_server.data_dir / "jobs" / job_id).exists()

"""LLM moment providers against fake Gemini and OpenAI-compatible servers on loopback.

Each fake server records what it receives (path, headers, JSON body) and answers with
chosen windows, garbage, a timeout or an error; the selection (and the manifest built from
it) follows the valid reply and falls back to the local scorer for the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from engine.config import Settings
from engine.options import ProcessOptions
from engine.types import MediaInfo
from stages.moments import MomentRequest, build_provider, provider_name
from stages.moments.llm import LLMMomentSelector
from stages.output import ManifestRequest, build_manifest
from tests.stages.moments.test_highlights import FLAT, speech  # the same synthetic talk

KEY = "sk-test-SECRET-0123456789"

GARDEN = [
    "Welcome back to the garden show.",
    "Tomatoes love rich soil with plenty of compost mixed in.",
    "Water the tomato plants deeply twice a week.",
    "A thick layer of mulch keeps the soil cool and moist.",
    "Pick each tomato when it is deep red and a little soft.",
    "Compost and mulch make the garden soil rich every summer.",
]
HIRING = [
    "Now let us talk about hiring engineers for a startup.",
    "Why do most startups fail at hiring engineers?",
    "They interview candidates for trivia instead of real engineering work.",
    "Tell every engineering candidate the salary range in the first call.",
    "The best engineers get three offers within a single week of interviews.",
    "So move fast and answer every hiring candidate within two days.",
]


TRANSCRIPT = speech(GARDEN * 2 + HIRING * 2)
SPAN = (0.0, TRANSCRIPT.audio_duration + 0.5)
HIRING_START = next(w.start for w in TRANSCRIPT.words if w.text == "Now")


def request(**opts: Any) -> MomentRequest:
    options = ProcessOptions.build(**{"clip_length": "short", "num_clips": 2, **opts})
    return MomentRequest(TRANSCRIPT, FLAT, options, SPAN)


def cuts_a_word(t: float) -> bool:
    return any(w.start + 1e-6 < t < w.end - 1e-6 for w in TRANSCRIPT.words)


class FakeModel:
    """One fake endpoint: ``kind`` is gemini or openai; ``mode`` valid | garbage | timeout | error | denied."""

    def __init__(self, kind: str, mode: str, moments: list[dict[str, Any]] | None = None) -> None:
        self.kind, self.mode, self.moments = kind, mode, moments or []
        self.requests: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        if self.kind == "gemini":
            app.router.add_post("/{version}/models/{tail}", self.handle)
        else:
            app.router.add_post("/v1/chat/completions", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        if self.mode == "timeout":
            await asyncio.sleep(3.0)
        if self.mode == "error":  # an upstream that echoes what it got, key included
            return web.json_response({"error": {"code": 500, "message": f"internal error for key {KEY}",
                                                "status": "INTERNAL"}}, status=500)
        if self.mode == "denied":
            return web.json_response({"error": {"code": 400, "message": "API key not valid",
                                                "status": "INVALID_ARGUMENT"}}, status=400)
        text = "Sure! Here are some great moments: first, the tomato bit" if self.mode == "garbage" \
            else json.dumps({"moments": self.moments})
        if self.kind == "gemini":
            return web.json_response({
                "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 120, "totalTokenCount": 1020},
            })
        if self.mode == "valid":
            text = "```json\n" + text + "\n```"  # some local models fence their JSON
        return web.json_response({
            "id": "x", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finishReason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 120},
        })


def settings_for(kind: str, base_url: str, **extra: Any) -> Settings:
    common = {"llm_request_timeout_s": 0.6, "llm_retries": 2, "llm_backoff_s": 0.01, "llm_timeout_s": 20.0}
    if kind == "gemini":
        env = {"GEMINI_API_KEY": KEY, "CLIPORA_GEMINI_BASE_URL": base_url, "CLIPORA_GEMINI_MODEL": "gemini-test"}
    else:
        env = {"CLIPORA_OPENAI_BASE_URL": base_url + "/v1", "CLIPORA_OPENAI_MODEL": "qwen-test",
               "CLIPORA_OPENAI_API_KEY": KEY}
    return Settings.from_env(environ=env, **{**common, **extra})


def request_text(kind: str, req: dict[str, Any]) -> tuple[str, str]:
    """(system instructions, user content) of one recorded request."""
    body = req["body"]
    if kind == "gemini":
        system = " ".join(p["text"] for p in body["systemInstruction"]["parts"])
        user = " ".join(p["text"] for c in body["contents"] for p in c["parts"])
        return system, user
    msgs = {m["role"]: m["content"] for m in body["messages"]}
    return msgs["system"], msgs["user"]


CHOSEN = [  # deliberately sloppy: mid-word edges, one too long, one overlapping the first
    {"start": HIRING_START + 0.05, "end": HIRING_START + 9.0, "score": 9.2, "title": "Why startups fail at hiring",
     "viral_hook": "Most startups hire wrong.", "key_insight": "Hire for real work, not trivia.",
     "dominant_emotion": "Surprise", "hashtags": ["#hiring", "startups", "engineering jobs"], "viral_score": 9.4},
    {"start": 2.0, "end": 40.0, "score": 6.0, "title": "Soil secrets", "viral_hook": "Your soil is hungry.",
     "key_insight": "Compost feeds tomatoes.", "dominant_emotion": "joy", "hashtags": ["garden"],
     "viral_score": 6.1},
    {"start": HIRING_START + 3.0, "end": HIRING_START + 12.0, "score": 5.0, "title": "dup",
     "viral_hook": "x", "key_insight": "y", "dominant_emotion": "calm", "hashtags": [], "viral_score": 5.0},
]


@pytest.mark.parametrize("kind", ["gemini", "openai"])
async def test_valid_reply_is_validated_and_followed(aiohttp_server, kind):
    fake = FakeModel(kind, "valid", CHOSEN)
    server = await aiohttp_server(fake.app())
    settings = settings_for(kind, str(server.make_url("")).rstrip("/"))
    provider = build_provider(settings)
    assert isinstance(provider, LLMMomentSelector) and provider.name == kind
    sel = await asyncio.to_thread(provider.select, request(prompt="hiring engineers"))

    # what the model received: the words, the user's prompt, the length range and the schema
    assert len(fake.requests) == 1
    got = fake.requests[0]
    system, user = request_text(kind, got)
    assert "hiring engineers" in user and "3-15 seconds" in user and "Genre:" in user
    for w in TRANSCRIPT.words:
        assert w.text in user
    assert f"[{TRANSCRIPT.words[0].start:.2f}-" in user  # timestamped lines
    if kind == "gemini":
        assert got["path"] == "/v1/models/gemini-test:generateContent"
        assert got["headers"]["x-goog-api-key"] == KEY
        gen = got["body"]["generationConfig"]
        assert gen["responseMimeType"] == "application/json"
        item = gen["responseSchema"]["properties"]["moments"]["items"]
        assert {"start", "end", "score", "title", "viral_hook", "hashtags", "viral_score"} <= set(item["properties"])
    else:
        assert got["path"] == "/v1/chat/completions"
        assert got["headers"]["Authorization"] == f"Bearer {KEY}"
        assert got["body"]["model"] == "qwen-test"
        assert got["body"]["response_format"] == {"type": "json_object"}
        assert '"viral_hook"' in system and '"moments"' in system

    # what came out: the model's windows, made valid
    assert [m.provider for m in sel.moments] == [kind, kind]
    first, second = sel.moments
    assert abs(first.start - HIRING_START) < 0.3 and first.score == 9.2
    assert first.metadata.title == "Why startups fail at hiring"
    assert first.metadata.hashtags == ("hiring", "startups", "engineeringjobs")
    assert first.metadata.dominant_emotion == "surprise" and first.metadata.viral_score == 9.4
    assert 3.0 <= second.duration <= 15.0 and second.start >= 1.5  # 38 s asked, cut to the range
    for m in sel.moments:
        assert 3.0 - 1e-6 <= m.duration <= 15.0 + 1e-6
        assert not cuts_a_word(m.start) and not cuts_a_word(m.end)
        assert m.reasons["model_score"] == m.score and "hook" in m.reasons
    assert first.end + 0.2 <= second.start or second.end + 0.2 <= first.start

    media = MediaInfo("x.mp4", "mp4", SPAN[1], 1280, 720, 1280, 720, 0, 25.0, 25, 1, False, "h264", True)
    manifest = build_manifest(ManifestRequest("job", media, request().options, sel, TRANSCRIPT,
                                              [m.duration for m in sel.moments], Path("/tmp")))
    assert [c["provider"] for c in manifest["clips"]] == [kind, kind]
    assert manifest["clips"][0]["metadata"]["title"] == "Why startups fail at hiring"
    assert manifest["moments"]["providers"] == [kind]
    assert KEY not in json.dumps(manifest)


@pytest.mark.parametrize("kind", ["gemini", "openai"])
@pytest.mark.parametrize("mode", ["garbage", "timeout", "error"])
async def test_bad_replies_retry_then_fall_back_to_local(aiohttp_server, caplog, kind, mode):
    caplog.set_level(logging.DEBUG)
    fake = FakeModel(kind, mode)
    server = await aiohttp_server(fake.app())
    provider = build_provider(settings_for(kind, str(server.make_url("")).rstrip("/")))
    sel = await asyncio.to_thread(provider.select, request(prompt="hiring engineers"))
    assert len(fake.requests) == 2  # llm_retries tries, then the fallback
    assert sel.moments and all(m.provider == "local" for m in sel.moments)
    note = next(n for n in sel.notes if "local scorer chose them" in n)
    assert kind in note
    assert {"garbage": "malformed", "timeout": "timeout", "error": "500"}[mode] in note.lower()
    # the local scorer's choice: the prompt's topic
    assert sel.moments[0].start >= HIRING_START - 0.5
    assert KEY not in " ".join(sel.notes) and KEY not in caplog.text


@pytest.mark.parametrize("kind", ["gemini", "openai"])
async def test_a_client_error_is_not_retried(aiohttp_server, kind):
    fake = FakeModel(kind, "denied")
    server = await aiohttp_server(fake.app())
    provider = build_provider(settings_for(kind, str(server.make_url("")).rstrip("/"), llm_retries=3))
    sel = await asyncio.to_thread(provider.select, request())
    assert len(fake.requests) == 1
    assert all(m.provider == "local" for m in sel.moments) and any("400" in n for n in sel.notes)


async def test_auto_hook_off_keeps_extractive_metadata(aiohttp_server):
    fake = FakeModel("gemini", "valid", CHOSEN)
    server = await aiohttp_server(fake.app())
    provider = build_provider(settings_for("gemini", str(server.make_url("")).rstrip("/")))
    sel = await asyncio.to_thread(provider.select, request(auto_hook=False))
    first = sel.moments[0]
    assert first.provider == "gemini" and first.score == 9.2
    text = " ".join(w.text for w in TRANSCRIPT.words_between(first.start, first.end)).lower()
    assert first.metadata.title != "Why startups fail at hiring"
    assert first.metadata.viral_hook.lower()[:20] in text
    assert all(tag.lower() in text for tag in first.metadata.hashtags)


async def test_long_transcripts_go_in_overlapping_chunks_within_the_budget(aiohttp_server):
    long = speech((GARDEN + HIRING) * 6)
    fake = FakeModel("gemini", "valid", [])

    async def answer(req: web.Request) -> web.Response:  # one window per chunk, at its first line
        body = await req.json()
        fake.requests.append({"body": body, "path": req.path})
        user = body["contents"][0]["parts"][0]["text"]
        first = user.split("Transcript:\n", 1)[1].split("]", 1)[0].lstrip("[")
        a = float(first.split("-")[0])
        reply = {"moments": [{"start": a, "end": a + 8, "score": 5 + len(fake.requests) / 10, "title": "t",
                              "viral_hook": "h", "key_insight": "k", "dominant_emotion": "joy",
                              "hashtags": ["x"], "viral_score": 5}]}
        return web.json_response({"candidates": [{"content": {"parts": [{"text": json.dumps(reply)}]}}]})

    app = web.Application()
    app.router.add_post("/{version}/models/{tail}", answer)
    server = await aiohttp_server(app)
    settings = settings_for("gemini", str(server.make_url("")).rstrip("/"), llm_chunk_tokens=400,
                            gemini_api_version="v1beta")
    provider = build_provider(settings)
    req = MomentRequest(long, FLAT, ProcessOptions.build(clip_length="short", num_clips=10),
                        (0.0, long.audio_duration + 0.5))
    sel = await asyncio.to_thread(provider.select, req)
    assert {r["path"] for r in fake.requests} == {"/v1beta/models/gemini-test:generateContent"}
    parts = [r["body"]["contents"][0]["parts"][0]["text"] for r in fake.requests]
    assert len(parts) >= 3 and all(f"of {len(parts)} of the transcript" in p for p in parts)
    sent = " ".join(parts)
    assert all(f"[{w.start:.2f}-" in sent for w in long.words if w is long.words[0]) and "Compost" in sent
    starts = [float(p.split("Transcript:\n", 1)[1].split("-")[0].lstrip("[")) for p in parts]
    assert starts == sorted(starts) and len(sel.moments) == min(10, len(parts))
    assert all(m.provider == "gemini" for m in sel.moments)

    # a budget of about one chunk: fewer requests, and the notes say so
    fake.requests.clear()
    one = settings_for("gemini", str(server.make_url("")).rstrip("/"), llm_chunk_tokens=400,
                       llm_token_budget=2 * 400 + 3000, llm_max_output_tokens=1000)
    sel = await asyncio.to_thread(build_provider(one).select, req)
    assert 1 <= len(fake.requests) < len(parts)
    assert any("token budget" in n for n in sel.notes)


def test_provider_choice_and_secrets_from_settings():
    assert provider_name(Settings.from_env(environ={})) == "local"
    s = Settings.from_env(environ={"GEMINI_API_KEY": KEY})
    assert provider_name(s) == "gemini" and s.gemini_api_key == KEY
    assert KEY not in repr(s) and KEY not in repr(build_provider(s).backend)  # type: ignore[attr-defined]
    o = Settings.from_env(environ={"CLIPORA_OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "CLIPORA_OPENAI_MODEL": "m"})
    assert provider_name(o) == "openai"
    forced = Settings.from_env(environ={"GEMINI_API_KEY": KEY, "CLIPORA_MOMENTS_PROVIDER": "local"})
    assert provider_name(forced) == "local"
    with pytest.raises(ValueError):
        provider_name(Settings.from_env(environ={"CLIPORA_MOMENTS_PROVIDER": "gpt"}))


def test_mode_none_never_calls_the_model():
    s = settings_for("openai", "http://127.0.0.1:9")  # nothing listens there
    sel = build_provider(s).select(request(mode="none", trim_start=0.0))
    assert [(m.start, m.end, m.provider) for m in sel.moments] == [(SPAN[0], SPAN[1], "local")]

"""Regression tests from review: key redaction before truncation, provider configuration errors."""

from __future__ import annotations

import httpx
import pytest

from engine.config import Settings
from engine.errors import ClipporaError
from stages.moments import ProviderFailure, build_provider, provider_name
from stages.moments.gemini import GeminiBackend
from stages.moments.openai_compat import OpenAICompatBackend

KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"


def straddling(prefix_len: int) -> str:
    """A message whose copy of KEY starts a little before character ``prefix_len`` + its prefix."""
    return "x" * prefix_len + KEY + " trailing detail " * 10


def assert_no_key_part(message: str) -> None:
    # no run of 8 characters of the key may survive (the cut used to leave its first half)
    for i in range(len(KEY) - 8):
        assert KEY[i : i + 8] not in message, message


@pytest.mark.parametrize("offset", [150, 170, 185, 195])
def test_openai_transport_error_never_leaks_part_of_the_key(monkeypatch, offset):
    backend = OpenAICompatBackend("http://127.0.0.1:9/v1", "m", api_key=KEY)
    # "ConnectError: " is 14 characters: the key straddles the old 200-character cut
    text = straddling(offset)

    def boom(self, *args, **kwargs):
        raise httpx.ConnectError(text)

    monkeypatch.setattr(httpx.Client, "post", boom)
    with pytest.raises(ProviderFailure) as info:
        backend.complete("sys", "user", {}, 1.0)
    assert_no_key_part(str(info.value))
    assert len(str(info.value)) <= 200


@pytest.mark.parametrize("offset", [90, 110, 115])
def test_openai_http_error_body_never_leaks_part_of_the_key(monkeypatch, offset):
    backend = OpenAICompatBackend("http://127.0.0.1:9/v1", "m", api_key=KEY)

    def reply(self, *args, **kwargs):
        return httpx.Response(401, text=straddling(offset))

    monkeypatch.setattr(httpx.Client, "post", reply)
    with pytest.raises(ProviderFailure) as info:
        backend.complete("sys", "user", {}, 1.0)
    assert_no_key_part(str(info.value))


@pytest.mark.parametrize("offset", [150, 175, 190])
def test_gemini_errors_never_leak_part_of_the_key(monkeypatch, offset):
    from google import genai
    from google.genai import errors

    backend = GeminiBackend(KEY, "gemini-x", "http://127.0.0.1:9")
    text = straddling(offset)

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError(text)

    monkeypatch.setattr(genai, "Client", Broken)
    with pytest.raises(ProviderFailure) as info:
        backend.complete("sys", "user", {}, 1.0)
    assert_no_key_part(str(info.value))
    assert len(str(info.value)) <= 200

    class Refused:
        def __init__(self, *args, **kwargs):
            raise errors.ClientError(403, {"error": {"code": 403, "message": text, "status": "PERMISSION_DENIED"}})

    monkeypatch.setattr(genai, "Client", Refused)
    with pytest.raises(ProviderFailure) as info:
        backend.complete("sys", "user", {}, 1.0)
    assert_no_key_part(str(info.value))
    assert len(str(info.value)) <= 200


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"CLIPORA_MOMENTS_PROVIDER": "gpt"}, "CLIPORA_MOMENTS_PROVIDER"),
        ({"CLIPORA_MOMENTS_PROVIDER": "gemini"}, "GEMINI_API_KEY"),
        ({"CLIPORA_MOMENTS_PROVIDER": "openai"}, "CLIPORA_OPENAI_BASE_URL"),
        ({"CLIPORA_MOMENTS_PROVIDER": "openai", "CLIPORA_OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
         "CLIPORA_OPENAI_MODEL"),
    ],
)
def test_provider_misconfiguration_is_a_clear_error_naming_the_setting(env, setting):
    settings = Settings.from_env(environ=env)
    with pytest.raises(ClipporaError) as info:  # not a bare ValueError: the job shows this message
        build_provider(settings)
    assert setting in info.value.message
    assert "moment" in info.value.message.lower()
    assert isinstance(info.value, ValueError)  # callers that caught ValueError still do
    if setting == "CLIPORA_MOMENTS_PROVIDER":
        with pytest.raises(ClipporaError):
            provider_name(settings)

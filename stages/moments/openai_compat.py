"""Any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp server, ...).

``Settings.openai_base_url`` is the API root including its version, as the OpenAI client
takes it (``http://127.0.0.1:11434/v1`` for Ollama, ``http://host:8000/v1`` for vLLM);
requests go to ``{base}/chat/completions`` with JSON mode
(``response_format={"type": "json_object"}``) and the schema in the system message.
``Settings.openai_api_key`` is sent as a bearer token when set.
"""

from __future__ import annotations

from typing import Any

import httpx

from stages.moments.base import ProviderFailure, redact
from stages.moments.llm import Completion, RetryableFailure


class OpenAICompatBackend:
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str = "", max_output_tokens: int = 4096) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._key = api_key
        self.max_output_tokens = max_output_tokens

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._key,)

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatBackend(model={self.model!r}, base_url={self.base_url!r})"

    def complete(self, system: str, user: str, schema: dict[str, Any], timeout_s: float) -> Completion:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_object"},
            "temperature": 0.4,
            "max_tokens": self.max_output_tokens,
        }
        try:
            with httpx.Client(timeout=timeout_s, trust_env=False) as client:
                r = client.post(f"{self.base_url}/chat/completions", json=body, headers=headers)
        except httpx.TimeoutException:
            raise RetryableFailure(f"timeout after {timeout_s:.0f} s") from None
        except httpx.HTTPError as exc:
            raise RetryableFailure(redact(f"{type(exc).__name__}: {exc}", self.secrets, 200)) from None
        if r.status_code != 200:
            msg = redact(f"HTTP {r.status_code}: {r.text}", self.secrets, 130)
            raise (RetryableFailure if r.status_code in (408, 429) or r.status_code >= 500
                   else ProviderFailure)(msg)
        try:
            data = r.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RetryableFailure("malformed reply (not a chat completion)") from None
        if not isinstance(text, str) or not text.strip():
            raise RetryableFailure("empty reply")
        usage = data.get("usage") or {}
        return Completion(text, int(usage.get("prompt_tokens", 0) or 0), int(usage.get("completion_tokens", 0) or 0))

"""Gemini through ``google-genai``: structured JSON output (response_mime_type + response_schema).

``GEMINI_API_KEY`` turns it on. ``Settings.gemini_base_url`` points the client elsewhere
(``HttpOptions(base_url=...)``; when empty the library's own ``GOOGLE_GEMINI_BASE_URL``
applies) and ``Settings.gemini_api_version`` picks the path prefix (empty: the library's
default, ``v1`` with a custom base URL; ``v1beta`` switches it). Requests go to
``{base}/{version}/models/{model}:generateContent`` with the key in ``x-goog-api-key``.
The client's own retries are off: :class:`LLMMomentSelector` retries with backoff itself.
"""

from __future__ import annotations

from typing import Any

from stages.moments.base import ProviderFailure, redact
from stages.moments.llm import Completion, RetryableFailure


class GeminiBackend:
    name = "gemini"

    def __init__(self, api_key: str, model: str, base_url: str = "", api_version: str = "",
                 max_output_tokens: int = 4096) -> None:
        self._key = api_key
        self.model = model
        self.base_url = base_url
        self.api_version = api_version
        self.max_output_tokens = max_output_tokens

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._key,)

    def __repr__(self) -> str:  # never the key
        return f"GeminiBackend(model={self.model!r}, base_url={self.base_url!r})"

    def complete(self, system: str, user: str, schema: dict[str, Any], timeout_s: float) -> Completion:
        from google import genai
        from google.genai import errors, types

        http = types.HttpOptions(
            base_url=self.base_url or None,
            api_version=self.api_version or None,
            timeout=max(1, int(timeout_s * 1000)),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        config = types.GenerateContentConfig(
            system_instruction=system,
            response_mime_type="application/json",
            response_schema=schema,
            temperature=0.4,
            max_output_tokens=self.max_output_tokens,
        )
        try:
            client = genai.Client(api_key=self._key, http_options=http)
            response = client.models.generate_content(model=self.model, contents=user, config=config)
        except errors.APIError as exc:
            code = int(getattr(exc, "code", 0) or 0)
            msg = redact(f"HTTP {code}: {getattr(exc, 'message', '') or exc}", self.secrets, 200)
            raise (RetryableFailure if code in (408, 429) or code >= 500 else ProviderFailure)(msg) from None
        except Exception as exc:  # httpx timeouts and connection errors, and anything the SDK raises
            kind = "timeout" if "timeout" in type(exc).__name__.lower() else type(exc).__name__
            raise RetryableFailure(redact(f"{kind}: {exc}", self.secrets, 200)) from None
        text = response.text
        if not text:
            raise RetryableFailure("empty reply")
        usage = response.usage_metadata
        return Completion(
            text,
            int(getattr(usage, "prompt_token_count", 0) or 0) if usage else 0,
            int(getattr(usage, "candidates_token_count", 0) or 0) if usage else 0,
        )

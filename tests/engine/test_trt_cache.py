"""The TensorRT plan cache: keying, invalidation, corrupt files, atomic writes (no TensorRT needed)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from engine.trt_cache import EngineCache, EngineKey, ShapeProfile, engine_key, file_sha256

PROFILE = ShapeProfile("input.1", (1, 3, 32, 32), (16, 3, 544, 960), (32, 3, 1088, 1920))


@pytest.fixture
def onnx(tmp_path: Path) -> Path:
    path = tmp_path / "centerface-dynamic.onnx"
    path.write_bytes(b"fake onnx graph " * 100)
    return path


def key_for(onnx: Path, **over: object) -> EngineKey:
    args: dict[str, object] = dict(tensorrt_version="10.13.0", gpu_name="NVIDIA H200",
                                   compute_capability=(9, 0), profiles=[PROFILE], precision="fp32")
    args.update(over)
    return engine_key(onnx, **args)  # type: ignore[arg-type]


class Builder:
    def __init__(self, plan: bytes = b"serialized engine bytes") -> None:
        self.plan = plan
        self.calls: list[EngineKey] = []

    def __call__(self, key: EngineKey) -> bytes:
        self.calls.append(key)
        return self.plan + key.digest()[:8].encode()


def test_the_key_is_the_onnx_sha256_not_its_name(onnx: Path, tmp_path: Path) -> None:
    key = key_for(onnx)
    assert key.onnx_sha256 == hashlib.sha256(onnx.read_bytes()).hexdigest() == file_sha256(onnx)
    renamed = tmp_path / "other-name.onnx"
    renamed.write_bytes(onnx.read_bytes())
    assert key_for(renamed) == key and key_for(renamed).digest() == key.digest()


def test_build_once_then_load(onnx: Path, tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path / "cache"), Builder()
    key = key_for(onnx)
    first = cache.get_or_build(key, build)
    second = cache.get_or_build(key, build)
    assert first == second and len(build.calls) == 1
    plan_path, meta_path = cache.paths(key)
    assert plan_path.parent == tmp_path / "cache" / "tensorrt" and plan_path.suffix == ".plan"
    meta = json.loads(meta_path.read_text())
    assert meta["key"]["onnx_sha256"] == key.onnx_sha256
    assert meta["key"]["profiles"] == [{"input": "input.1", "min": [1, 3, 32, 32],
                                        "opt": [16, 3, 544, 960], "max": [32, 3, 1088, 1920]}]
    assert meta["plan_sha256"] == hashlib.sha256(first).hexdigest() and meta["plan_size"] == len(first)
    # a fresh cache object (another process) finds it too
    assert EngineCache(tmp_path / "cache").load(key) == first


@pytest.mark.parametrize("change", [
    {"tensorrt_version": "11.4.0"},
    {"gpu_name": "NVIDIA L4"},
    {"compute_capability": (8, 9)},
    {"profiles": [dataclasses.replace(PROFILE, max=(16, 3, 1088, 1920))]},
    {"profiles": [dataclasses.replace(PROFILE, opt=(8, 3, 544, 960))]},
    {"precision": "fp16"},
])
def test_any_key_part_changing_rebuilds_and_prunes_the_old_plan(onnx: Path, tmp_path: Path,
                                                                  change: dict[str, object]) -> None:
    cache, build = EngineCache(tmp_path), Builder()
    old = key_for(onnx)
    cache.get_or_build(old, build)
    new = key_for(onnx, **change)
    assert new.digest() != old.digest() and cache.paths(new) != cache.paths(old)
    assert cache.load(new) is None
    cache.get_or_build(new, build)
    assert len(build.calls) == 2 and build.calls[1] == new
    assert cache.load(old) is None and not cache.paths(old)[0].exists()  # pruned
    assert cache.load(new) is not None


def test_a_changed_onnx_file_rebuilds(onnx: Path, tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), Builder()
    cache.get_or_build(key_for(onnx), build)
    onnx.write_bytes(b"the fp16 conversion of the graph")
    cache.get_or_build(key_for(onnx), build)
    assert len(build.calls) == 2 and build.calls[0].onnx_sha256 != build.calls[1].onnx_sha256


def test_corrupt_or_torn_plans_load_as_none(onnx: Path, tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), Builder()
    key = key_for(onnx)
    plan = cache.get_or_build(key, build)
    plan_path, meta_path = cache.paths(key)

    plan_path.write_bytes(plan[:-3])  # truncated
    assert cache.load(key) is None
    plan_path.write_bytes(bytes([plan[0] ^ 0xFF]) + plan[1:])  # same size, other bytes
    assert cache.load(key) is None
    cache.get_or_build(key, build)  # rebuilt over it
    assert len(build.calls) == 2 and cache.load(key) == plan

    meta_path.write_text("{not json")
    assert cache.load(key) is None
    meta_path.unlink()  # a plan without its metadata (crash between the two writes) does not count
    assert cache.load(key) is None


def test_metadata_for_another_key_is_a_miss(onnx: Path, tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), Builder()
    key = key_for(onnx)
    cache.get_or_build(key, build)
    _, meta_path = cache.paths(key)
    meta = json.loads(meta_path.read_text())
    meta["key"]["tensorrt_version"] = "10.0.0"  # e.g. copied in by hand
    meta_path.write_text(json.dumps(meta))
    assert cache.load(key) is None
    meta["key"]["tensorrt_version"] = key.tensorrt_version
    meta["format"] = 999
    meta_path.write_text(json.dumps(meta))
    assert cache.load(key) is None


def test_a_failing_build_leaves_nothing_behind(onnx: Path, tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    key = key_for(onnx)

    def fails(k: EngineKey) -> bytes:
        raise RuntimeError("TensorRT: could not find any implementation for node Conv_0")

    with pytest.raises(RuntimeError):
        cache.get_or_build(key, fails)
    assert not cache.root.exists() or list(cache.root.iterdir()) == []
    with pytest.raises(ValueError, match="empty"):
        cache.store(key, b"")
    assert list(cache.root.iterdir()) == [] if cache.root.exists() else True


def test_invalidate_and_prune_leave_other_models_alone(onnx: Path, tmp_path: Path) -> None:
    cache, build = EngineCache(tmp_path), Builder()
    face = key_for(onnx)
    other = key_for(onnx, model="centerface-int8x")
    cache.get_or_build(face, build)
    cache.get_or_build(other, build)
    (cache.root / "notes.txt").write_text("kept")
    cache.prune(keep=face)
    assert cache.load(other) is not None and (cache.root / "notes.txt").exists()
    cache.invalidate(face)
    assert cache.load(face) is None and not any(p.exists() for p in cache.paths(face))
    assert cache.load(other) is not None


def test_writes_are_atomic_no_temporaries_left(onnx: Path, tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    cache.get_or_build(key_for(onnx), Builder())
    assert sorted(p.suffix for p in cache.root.iterdir()) == [".json", ".plan"]


@pytest.mark.parametrize(("bad", "match"), [
    ({"precision": "int4"}, "precision"),
    ({"profiles": []}, "profile"),
    ({"gpu_name": ""}, "GPU name"),
    ({"model": "../escape"}, "file name"),
])
def test_bad_keys_are_refused(onnx: Path, bad: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        key_for(onnx, **bad)


@pytest.mark.parametrize(("lo", "opt", "hi"), [
    ((1, 3, 32), (1, 3, 32, 32), (1, 3, 32, 32)),  # rank
    ((2, 3, 32, 32), (1, 3, 32, 32), (4, 3, 32, 32)),  # min > opt
    ((0, 3, 32, 32), (1, 3, 32, 32), (4, 3, 32, 32)),  # zero
])
def test_bad_profiles_are_refused(lo: tuple[int, ...], opt: tuple[int, ...], hi: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        ShapeProfile("input.1", lo, opt, hi)


def test_short_sha_is_refused() -> None:
    with pytest.raises(ValueError, match="sha256"):
        EngineKey("10.13.0", "NVIDIA H200", (9, 0), "abc123", (PROFILE,), "fp32")

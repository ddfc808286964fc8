"""Publishing a re-rendered clip (engine.pipeline.publish_version): the current files kept as
clip_NN.vK.*, the new ones in place, the manifest's entry replaced with versioned URLs and the
earlier versions listed; the manifest of other clips untouched."""

from __future__ import annotations

import json
from pathlib import Path

from engine.pipeline import current_version, publish_version, versioned_name
from engine.types import ClipResult

FILES = ("clip_02.mp4", "clip_02.jpg", "clip_02.ass", "clip_02.srt", "clip_02.vtt")


def entry(index: int, start: float, duration: float, tag: str = "") -> dict:
    base = f"/api/clips/J/clip_{index:02d}"
    return {"index": index, "start": start, "end": start + duration, "duration": duration, "aspectRatio": "9:16",
            "downloadUrl": f"{base}.mp4", "posterUrl": f"{base}.jpg", "captionsUrl": f"{base}.ass",
            "srtUrl": f"{base}.srt", "vttUrl": f"{base}.vtt", "transcript": tag}


def make(tmp_path: Path, version_text: str) -> tuple[Path, Path]:
    out, unit = tmp_path / "out", tmp_path / f"unit-{version_text}"
    out.mkdir(exist_ok=True)
    unit.mkdir()
    for name in FILES:
        (unit / name).write_text(f"{name} {version_text}")
    return out, unit


def test_versions_are_kept_and_the_manifest_follows(tmp_path: Path) -> None:
    out, _ = make(tmp_path, "v1")
    for name in FILES:
        (out / name).write_text(f"{name} v1")
    (out / "clip_01.mp4").write_text("clip one")
    manifest = {"jobId": "J", "clipCount": 2, "clips": [entry(1, 0.0, 10.0), entry(2, 20.0, 10.0, "old")]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert current_version(out, 2) == 1

    _, unit = make(tmp_path, "v2")
    new = publish_version(unit, ClipResult(2, 7.0, FILES), {**entry(2, 21.0, 7.0, "new"), "edit": {"start": 21.0}},
                          2, out)
    assert current_version(out, 2) == 2 and current_version(out, 1) == 1
    for name in FILES:
        assert (out / name).read_text() == f"{name} v2"
        assert (out / versioned_name(name, 1)).read_text() == f"{name} v1"
    assert not any(unit.iterdir())  # moved, not copied
    clip = new["clips"][1]
    assert clip["version"] == 2 and clip["transcript"] == "new"
    assert clip["downloadUrl"] == "/api/clips/J/clip_02.mp4?v=2"
    v1 = "/api/clips/J/clip_02.v1"
    assert clip["versions"] == [{"version": 1, "start": 20.0, "end": 30.0, "duration": 10.0, "aspectRatio": "9:16",
                                 "downloadUrl": f"{v1}.mp4", "posterUrl": f"{v1}.jpg", "captionsUrl": f"{v1}.ass",
                                 "srtUrl": f"{v1}.srt", "vttUrl": f"{v1}.vtt", "edit": {}}]
    assert new["clips"][0] == manifest["clips"][0] and json.loads((out / "manifest.json").read_text()) == new

    _, unit = make(tmp_path, "v3")
    third = publish_version(unit, ClipResult(2, 6.0, FILES), entry(2, 22.0, 6.0), 3, out)
    assert [v["version"] for v in third["clips"][1]["versions"]] == [1, 2]
    assert third["clips"][1]["versions"][1]["downloadUrl"] == "/api/clips/J/clip_02.v2.mp4"
    assert third["clips"][1]["versions"][1]["edit"] == {"start": 21.0}
    assert (out / "clip_02.v2.mp4").read_text() == "clip_02.mp4 v2" and current_version(out, 2) == 3

"""manifest.json: each clip lists its caption files (.ass, .srt, .vtt) and its crop path."""

from __future__ import annotations

from pathlib import Path

from engine.options import ProcessOptions
from engine.types import ClipMetadata, CropPath, MediaInfo, Moment, MomentSelection, Transcript, Word
from stages.framing import output_geometry
from stages.output import ManifestRequest, ManifestStage, build_manifest, crop_keyframes

MEDIA = MediaInfo("s.mp4", "mp4", 60.0, 1280, 720, 1280, 720, 0, 30.0, 30, 1, False, "h264", True)
META = ClipMetadata("A title", "A hook", "An insight", "joy", ("one", "two"), 7.5)


def _request(tmp_path: Path, with_paths: bool = True) -> ManifestRequest:
    moments = (Moment(5.0, 15.0, 7.5, {"hook": 1.0}, META), Moment(30.0, 40.0, 6.0, {"hook": 0.5}, META))
    words = (Word(5.5, 6.0, "hello"), Word(31.0, 31.5, "there"))
    geo = output_geometry(1280, 720, "9:16")
    paths = [crop_keyframes(CropPath(30.0, m.start, (100.0,) * 150 + (500.0,) * 150, (0.0,) * 300), geo, 300, 30.0)
             for m in moments]
    return ManifestRequest("job1", MEDIA, ProcessOptions.build(), MomentSelection(moments, 2),
                           Transcript(words), [10.0, 10.0], tmp_path,
                           clip_crop_paths=paths if with_paths else ())


def test_each_clip_lists_its_srt_and_vtt_beside_the_ass_and_its_crop_path(tmp_path: Path) -> None:
    manifest = build_manifest(_request(tmp_path))
    for i, clip in enumerate(manifest["clips"], start=1):
        base = f"/api/clips/job1/clip_{i:02d}"
        assert (clip["captionsUrl"], clip["srtUrl"], clip["vttUrl"]) == (f"{base}.ass", f"{base}.srt", f"{base}.vtt")
        kfs = clip["cropPath"]
        assert [(kf["t"], kf["x"]) for kf in kfs] == [(0.0, 100), (4.966667, 100), (5.0, 500), (9.966667, 500)]
        for kf in kfs:
            assert set(kf) == {"t", "x", "y", "w", "h"}
            assert 0 <= kf["x"] <= MEDIA.width - kf["w"] and 0 <= kf["y"] <= MEDIA.height - kf["h"]
            assert 0 <= kf["t"] < clip["duration"]


def test_without_crop_paths_there_is_no_crop_path_entry_and_the_file_is_written(tmp_path: Path, ctx) -> None:
    manifest = ManifestStage().process(_request(tmp_path, with_paths=False), ctx)
    assert all("cropPath" not in c and c["srtUrl"].endswith(".srt") for c in manifest["clips"])
    assert (tmp_path / "manifest.json").is_file()


def test_the_manifest_says_which_language_was_heard_and_whether_it_was_detected(tmp_path: Path) -> None:
    from dataclasses import replace

    req = _request(tmp_path)
    assert build_manifest(req)["language"] == {"code": "en", "requested": "auto", "detected": False,
                                               "probability": None}  # tiny.en: English, not detected
    detected = replace(req, transcript=Transcript(req.transcript.words, "ru", 60.0, language_probability=0.863))
    assert build_manifest(detected)["language"] == {"code": "ru", "requested": "auto", "detected": True,
                                                    "probability": 0.863}
    asked = replace(req, options=ProcessOptions.build(language="de"), transcript=Transcript(req.transcript.words, "de"))
    assert build_manifest(asked)["language"] == {"code": "de", "requested": "de", "detected": False,
                                                 "probability": None}

"""Parity: the same jobs before and after an engine change give the same artifacts.

Runs every option combination the test suite covers on the committed media (and the generated
interview) through ``run_job`` and records, per job, the manifest (job id removed), each clip's
.ass text, its frame count and every 5th decoded frame. ``--compare DIR`` then checks another
record against it: manifests and .ass files identical, frame counts identical, frames within
``--tolerance`` (mean absolute difference per 8-bit sample).

    python -m benchmarks.parity --out /tmp/parity/before
    python -m benchmarks.parity --out /tmp/parity/after --compare /tmp/parity/before
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "talk_beasty": ("speech_topics.mp4", {"num_clips": 2, "clip_length": "medium", "caption_preset": "beasty"}),
    "face_moving": ("face_moving.mp4", {"mode": "none"}),
    "face_static": ("face_static.mp4", {"mode": "none"}),
    "face_static_mozi": ("face_static.mp4", {"mode": "none", "caption_preset": "mozi"}),
    "no_audio": ("no_audio.mp4", {"clip_length": "short", "num_clips": 2, "caption_preset": "karaoke"}),
    "rotated": ("rotated_phone.mp4", {"mode": "none", "trim_start": 1.0, "trim_end": 5.0}),
    "two_faces_1x1": ("two_faces.mp4", {"mode": "none", "trim_end": 3.0, "aspect_ratio": "1:1"}),
    "two_faces_4x5": ("two_faces.mp4", {"mode": "none", "trim_end": 3.0, "aspect_ratio": "4:5"}),
    "two_faces_16x9": ("two_faces.mp4", {"mode": "none", "trim_end": 3.0, "aspect_ratio": "16:9"}),
    "interview_removed": ("@interview", {"mode": "none", "caption_preset": "karaoke", "remove_ai_voice": True}),
    "interview_kept": ("@interview", {"mode": "none", "caption_preset": "karaoke", "remove_ai_voice": False}),
    "interview_ai": ("@interview", {"mode": "ai", "clip_length": "short", "num_clips": 3, "remove_ai_voice": True}),
    "interview_follow": ("@interview_small", {"mode": "none", "layout": "follow", "remove_ai_voice": False}),
    "interview_split": ("@interview_small", {"mode": "none", "layout": "split", "caption_preset": "karaoke",
                                             "remove_ai_voice": False}),
}


def sources(tmp: Path, wanted: set[str]) -> dict[str, Path]:
    out = {}
    if "@interview" in wanted or "@interview_small" in wanted:
        from scripts.make_interview_media import interview_video

        if "@interview" in wanted:
            (tmp / "iv").mkdir()
            interview_video(tmp / "iv" / "interview.mp4", tmp / "iv")
            out["@interview"] = tmp / "iv" / "interview.mp4"
        if "@interview_small" in wanted:
            (tmp / "ivs").mkdir()
            interview_video(tmp / "ivs" / "interview.mp4", tmp / "ivs", size=(640, 360))
            out["@interview_small"] = tmp / "ivs" / "interview.mp4"
    return out


def normalised(manifest: dict[str, Any]) -> dict[str, Any]:
    job_id = manifest["jobId"]
    text = json.dumps(manifest, sort_keys=True).replace(job_id, "JOB")
    return json.loads(text)


def frames(path: Path, every: int = 5) -> tuple[int, np.ndarray]:
    kept, n = [], 0
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(c.streams.video[0])):
            n += 1
            if i % every == 0:
                kept.append(f.to_ndarray(format="yuv420p"))
    return n, np.stack(kept)


def record(out: Path, names: list[str]) -> None:
    from clipora.compose import StageSet, run_job
    from engine.config import Settings
    from engine.options import ProcessOptions

    out.mkdir(parents=True, exist_ok=True)
    stages = StageSet()
    with tempfile.TemporaryDirectory(prefix="clipora-parity-") as tmp_s:
        tmp = Path(tmp_s)
        settings = Settings.from_env(environ={}, cache_dir=tmp / "cache", threads=2)
        generated = sources(tmp, {CASES[n][0] for n in names})
        for name in names:
            media, opts = CASES[name]
            src = generated.get(media) or MEDIA / media
            job_out = tmp / name
            t0 = time.perf_counter()
            manifest = run_job(src, job_out, ProcessOptions.build(**opts), settings, stages=stages)
            took = time.perf_counter() - t0
            case = out / name
            case.mkdir(exist_ok=True)
            (case / "manifest.json").write_text(json.dumps(normalised(manifest), indent=1, sort_keys=True))
            counts = {}
            for clip in manifest["clips"]:
                stem = f"clip_{clip['index']:02d}"
                (case / f"{stem}.ass").write_text((job_out / f"{stem}.ass").read_text())
                n, sampled = frames(job_out / f"{stem}.mp4")
                np.save(case / f"{stem}.frames.npy", sampled)
                counts[stem] = n
            (case / "frames.json").write_text(json.dumps(counts))
            print(f"{name:<20} {manifest['clipCount']} clips  {took:6.1f} s", flush=True)


def compare(new: Path, old: Path, names: list[str], tolerance: float) -> int:
    bad = 0
    for name in names:
        a, b = new / name, old / name
        problems = []
        if json.loads((a / "manifest.json").read_text()) != json.loads((b / "manifest.json").read_text()):
            problems.append("manifest differs")
        if json.loads((a / "frames.json").read_text()) != json.loads((b / "frames.json").read_text()):
            problems.append("frame counts differ")
        worst = 0.0
        for ass in sorted(b.glob("*.ass")):
            if not (a / ass.name).is_file() or (a / ass.name).read_text() != ass.read_text():
                problems.append(f"{ass.name} differs")
        for fr in sorted(b.glob("*.frames.npy")):
            x, y = np.load(a / fr.name), np.load(fr)
            if x.shape != y.shape:
                problems.append(f"{fr.name}: shape {x.shape} vs {y.shape}")
                continue
            diff = np.abs(x.astype(np.int16) - y.astype(np.int16)).reshape(len(x), -1).mean(axis=1)
            worst = max(worst, float(diff.max()))
        if worst > tolerance:
            problems.append(f"frames differ by up to {worst:.3f} (tolerance {tolerance})")
        bad += bool(problems)
        print(f"{name:<20} {'OK' if not problems else 'DIFFERS'}  worst frame MAD {worst:.3f}"
              + (f"  ({'; '.join(problems)})" if problems else ""))
    print(f"{len(names) - bad} identical, {bad} differ")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--compare", type=Path)
    p.add_argument("--cases", default="", help="comma-separated subset (default: all)")
    p.add_argument("--tolerance", type=float, default=0.5)
    args = p.parse_args(argv)
    names = [n for n in re.split(r"[,\s]+", args.cases) if n] or list(CASES)
    record(args.out, names)
    return compare(args.out, args.compare, names, args.tolerance) if args.compare else 0


if __name__ == "__main__":
    sys.exit(main())

"""Framing quality on edited footage: cuts found, pans across cuts, no-face shots shown whole, cut cost.

Sources (generated into the bench cache, nothing committed):

- ``edited``: scripts/make_shots_media.py, 12 s 1280x720: two face shots (two people), a full-width
  text card, a cut back to the first angle (3 cuts);
- ``real_cuts``: the real talking heads of ../shared/media cut together (another man, a zoomed angle
  of the same man, back; 3 cuts), when that folder is present;
- ``steady``: 20 s of the committed talk (a face swaying across the frame, no cut), and the real
  vlog's first 8.9 s (a man gesturing, no cut) when present;
- ``multicam``: multi-camera podcasts (scripts/make_multicam_media.py): two and three generated
  people with their own espeak-ng voices (a wide shot, a close-up of each, cuts on and off the turn
  boundaries, a reaction shot), and the real talking heads cut together with their own voices
  (a side-by-side wide shot, a close-up of each) when ../shared/media is present. These are planned
  with the truth's speaker-labelled words (as diarization labels them) and judged by the
  generator's ``judge``: the share of the frames where someone speaks and the shot shows them whose
  crop holds the speaker's face ("speaker on screen"; follow and split layouts; a fit frame does
  not count), pans across a cut, the shortest hold between two moves inside a shot. Baselines: the
  per-shot planner without the one-speaker link (``SpeakerParams.solo_min = inf``: the planner
  before multi-camera support) and the one-shot planner.

Per source the faces stage runs once over the whole file, as a clip unit's faces step does; the
cut detector's own time (signatures of every decoded frame + finding the cuts,
``FaceDetectStage.last_cut_cost_s``) is reported per clip second and as a share of the faces
stage's time in the same run. The crop path is planned for 9:16 twice: per shot (today) and as one
shot (the planner before shots existed, the baseline). "Pans across a cut": cuts where the camera
is moving on the frame before or after the cut (an ease running across it). "No-face frames
shown whole": frames of the truth's no-face shots that the path lays out as fit. "Frames until the
new shot's face is framed": per cut into a shot with a face, output frames until that face sits in
the middle 60 % of the crop (the shot's length when it never does).

    python -m benchmarks.framing_quality [--quick] [--detect-size PX]

``--detect-size``: the face detector's input long side (``Settings.face_detect_size``; default the
setting's default).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    ROOT,
    TALK,
    Recorder,
    bench_settings,
    harness_main,
    machine_line,
    md_table,
    source_cache,
    stage_context,
)

NAME = "framing_quality"
SHARED = ROOT.parent / "shared" / "media"


def _sources(quick: bool) -> list[tuple[str, Path, float, dict[str, Any]]]:
    from scripts.make_shots_media import REAL_CUT_FRAMES, make, real_cuts

    cache = source_cache()
    edited = cache / "shots_edited.mp4"
    truth = make(edited)
    out: list[tuple[str, Path, float, dict[str, Any]]] = [
        ("edited", edited, truth["duration"], {"cuts": truth["cut_frames"],
                                               "no_face": [s for s in truth["shots"] if not s["face"]]})]
    if SHARED.is_dir():
        real = real_cuts(cache / "shots_real_cuts.mp4", SHARED)
        out.append(("real_cuts", real, 7.96, {"cuts": list(REAL_CUT_FRAMES), "no_face": []}))
    out.append(("steady talk", TALK, 8.0 if quick else 20.0, {"cuts": [], "no_face": []}))
    if SHARED.is_dir() and not quick:
        out.append(("steady vlog", SHARED / "vertical_vlog_hevc.mp4", 8.9, {"cuts": [], "no_face": []}))
    return out + _multicam(cache, quick)


def _multicam(cache: Path, quick: bool) -> list[tuple[str, Path, float, dict[str, Any]]]:
    import shutil

    from scripts.make_multicam_media import make, make_real

    out: list[tuple[str, Path, float, dict[str, Any]]] = []
    folder = cache / "multicam"
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    if shutil.which("espeak-ng"):
        for people in (2,) if quick else (2, 3):
            made.append((f"multicam, {people} generated people", folder / f"podcast{people}.mp4",
                         lambda p, people=people: make(p, folder, people)))
    if SHARED.is_dir():
        made.append(("multicam, real talking heads", folder / "podcast_real.mp4",
                     lambda p: make_real(p, folder, SHARED)))
    for name, path, build in made:
        truth = build(path)
        out.append((name, path, truth["duration"], {"cuts": truth["cut_frames"], "no_face": [], "multicam": truth}))
    return out


def _multicam_row(scan: Any, geo: Any, fps: float, seconds: float, truth: dict[str, Any]) -> dict[str, Any]:
    """A multi-camera source judged on the planner (follow, split) and its two baselines."""
    import math

    from engine.types import Word
    from scripts.make_multicam_media import judge, words_from_truth
    from stages.framing import plan_crop_path
    from stages.framing.speakers import SpeakerParams

    words = [Word(a, b, t, speaker=spk) for a, b, t, spk in words_from_truth(truth)]

    def judged(layout: str, **kw: Any) -> tuple[Any, dict[str, Any]]:
        path = plan_crop_path(scan.samples, geo, fps, 0.0, seconds, words=words, layout=layout, **kw)
        return path, judge(truth, path, geo.crop_w)

    follow, jf = judged("follow", shots=scan.shots)
    _, js = judged("split", shots=scan.shots)
    _, jb = judged("follow", shots=scan.shots, speaker_params=SpeakerParams(solo_min=math.inf))
    _, jo = judged("follow")
    return {"people": len(truth["people"]), "shot_kinds": [s["kind"] for s in truth["shots"]],
            "reaction_shots": sum(s["reaction"] for s in truth["shots"]), "speaker_frames": jf["speaker_frames"],
            "speaker_on_screen": jf["speaker_shown"], "speaker_on_screen_split": js["speaker_shown"],
            "speaker_on_screen_no_solo_link": jb["speaker_shown"], "speaker_on_screen_one_shot": jo["speaker_shown"],
            "fit_frames_no_solo_link": jb["fit_frames"], "pans_across_cuts_split": js["pans_across_cuts"],
            "min_hold_s": jf["min_hold_s"], "moves_in_shots": jf["moves_in_shots"],
            "first_move_after_cut_s": jf["first_move_s"], "links": len(follow.links)}


def _pans(x: np.ndarray, cuts: list[int]) -> int:
    return sum(int(abs(x[c - 1] - x[c - 2]) > 0.5 or abs(x[c + 1] - x[c]) > 0.5)
               for c in cuts if 2 <= c < len(x) - 1)


def _reframe_delays(x: np.ndarray, scan: Any, fps: float, crop_w: int, cuts: list[int]) -> list[int]:
    """Per cut into a shot with a face: output frames until that face (the shot's largest, median
    centre) sits in the middle 60 % of the crop; the shot's length when it never does."""
    out = []
    bounds = [*cuts, len(x)]
    for c, nxt in zip(cuts, bounds[1:], strict=False):
        a, b = c / fps, nxt / fps
        cxs = [max(s.faces, key=lambda f: f.area).cx for s in scan.samples if a <= s.t < b and s.faces]
        if not cxs:
            continue
        cx = float(np.median(cxs))
        pos = (cx - x[c:nxt]) / crop_w
        inside = np.flatnonzero((pos >= 0.2) & (pos <= 0.8))
        out.append(int(inside[0]) if len(inside) else nxt - c)
    return out


def run(quick: bool = False, detect_size: int | None = None) -> dict[str, Any]:
    from stages.framing import FaceDetectRequest, FaceDetectStage, output_geometry, plan_crop_path
    from stages.media import probe_media

    settings = bench_settings(**({"face_detect_size": detect_size} if detect_size else {}))
    rec = Recorder(NAME, quick, {"aspect": "9:16", "face_sample_fps": settings.face_sample_fps,
                                 "face_detect_size": settings.face_detect_size})
    work = source_cache() / "framing_quality_work"
    work.mkdir(parents=True, exist_ok=True)
    ctx = stage_context(work, settings)
    stage = FaceDetectStage()
    stage.setup(ctx)
    rows: list[dict[str, Any]] = []
    for name, path, seconds, truth in _sources(quick):
        media = probe_media(path)
        seconds = min(seconds, media.duration)
        t0 = time.perf_counter()
        scan = stage.process(FaceDetectRequest(media, 0.0, seconds), ctx)
        faces_s = time.perf_counter() - t0
        cut_s = stage.last_cut_cost_s
        found = [round(s.start * media.fps) for s in scan.shots[1:]]
        row: dict[str, Any] = {"source": name, "size": [media.width, media.height], "seconds": seconds,
                               "true_cuts": truth["cuts"], "found_cuts": found,
                               "missed": sum(1 for c in truth["cuts"] if all(abs(c - f) > 1 for f in found)),
                               "false": sum(1 for f in found if all(abs(c - f) > 1 for c in truth["cuts"])),
                               "faces_stage_s": faces_s, "cut_cost_s": cut_s,
                               "cut_ms_per_clip_s": 1000 * cut_s / seconds, "cut_share": cut_s / faces_s}
        if media.width > media.height:
            geo = output_geometry(media.width, media.height, "9:16")
            mc = truth.get("multicam")
            words = ()
            if mc is not None:
                from engine.types import Word
                from scripts.make_multicam_media import words_from_truth

                words = tuple(Word(a, b, t, speaker=spk) for a, b, t, spk in words_from_truth(mc))
                row.update(_multicam_row(scan, geo, media.fps, seconds, mc))
            shots = plan_crop_path(scan.samples, geo, media.fps, 0.0, seconds, shots=scan.shots, words=words)
            plain = plan_crop_path(scan.samples, geo, media.fps, 0.0, seconds, words=words)
            tf = np.arange(len(shots.x)) / media.fps
            no_face = np.zeros(len(tf), bool)
            for s in truth["no_face"]:
                no_face |= (tf >= s["start"] - 1e-6) & (tf < s["end"] - 1e-6)
            fit = np.array([(sh := shots.shot_at(t)) is not None and sh.layout == "fit" for t in tf])
            row.update({"layouts": [s.layout for s in shots.shots],
                        "pans_across_cuts": _pans(np.array(shots.x), truth["cuts"]),
                        "pans_across_cuts_baseline": _pans(np.array(plain.x), truth["cuts"]),
                        "reframe_delay_frames": _reframe_delays(np.array(shots.x), scan, media.fps, geo.crop_w,
                                                                truth["cuts"]),
                        "reframe_delay_frames_baseline": _reframe_delays(np.array(plain.x), scan, media.fps,
                                                                         geo.crop_w, truth["cuts"]),
                        "no_face_frames": int(no_face.sum()),
                        "no_face_whole": float(fit[no_face].mean()) if no_face.any() else None})
        rows.append(row)
    stage.teardown()
    return rec.save({"sources": rows})


def table(data: dict[str, Any]) -> str:
    out = []
    for r in data["results"]["sources"]:
        whole = "—" if r.get("no_face_whole") is None else f"**{100 * r['no_face_whole']:.0f} %** (was 0 %)"
        pans = ("—" if "pans_across_cuts" not in r or not r["true_cuts"] else
                f"**{r['pans_across_cuts']}** of {len(r['true_cuts'])} (one-shot planner: "
                f"{r['pans_across_cuts_baseline']})")
        delays = "—"
        if r.get("reframe_delay_frames") and not r.get("shot_kinds"):  # multi-camera: the speaker column says it
            delays = (f"**{max(r['reframe_delay_frames'])}** (one-shot planner: "
                      f"{', '.join(str(d) for d in r['reframe_delay_frames_baseline'])})")
        speaker = "—"
        if r.get("speaker_on_screen") is not None:
            speaker = (f"**{100 * r['speaker_on_screen']:.1f} %** / split "
                       f"**{100 * r['speaker_on_screen_split']:.1f} %** "
                       f"(without the one-speaker link: {100 * r['speaker_on_screen_no_solo_link']:.1f} %; "
                       f"one-shot planner: {100 * r['speaker_on_screen_one_shot']:.1f} %)")
            pans += f"; split **{r['pans_across_cuts_split']}**"
        hold = "—" if r.get("min_hold_s") is None else f"{r['min_hold_s']:.2f} s"
        layouts = ", ".join(r.get("layouts", [])) or "—"
        if r.get("shot_kinds"):  # a multi-camera source: one layout per kind of shot is enough to say
            pairs = sorted({f"{k} -> {lay}" for k, lay in zip(r["shot_kinds"], r["layouts"], strict=False)})
            layouts = f"{len(r['layouts'])} shots: " + ", ".join(pairs)
        out.append((r["source"], f"{r['size'][0]}x{r['size'][1]}, {r['seconds']:.1f} s",
                    f"{len(r['found_cuts'])} of {len(r['true_cuts'])} (missed {r['missed']}, false {r['false']})",
                    pans, delays, speaker, hold, whole, layouts,
                    f"{r['cut_ms_per_clip_s']:.1f} ms", f"**{100 * r['cut_share']:.1f} %**"))
    header = ("source", "clip", "cuts found (±1 frame)", "pans across a cut",
              "frames until the new shot's face is framed, worst cut", "speaking frames with the speaker on screen",
              "shortest hold between moves in a shot", "no-face frames shown whole",
              "shot layouts", "cut detection per clip second", "of the faces stage's time")
    return md_table(header, out) + "\n\n" + machine_line(data)


def main(argv: list[str] | None = None) -> None:
    harness_main(__doc__, run, table, argv, ("--detect-size", int))


if __name__ == "__main__":
    main()

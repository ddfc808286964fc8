"""Active-speaker framing and the split layout.

Unit tests drive the planner with synthetic face samples (two faces, the talking one's mouth
moving); the slow tests render a generated two-face interview (scripts/make_interview_media.py:
host left in colour, guest right in greyscale, each mouth opening with its own voice) and check
the camera against the generator's ground truth, on the crop path and on the rendered pixels.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from engine.types import CropPath, FaceBox, FaceSample, Word
from stages.framing import SpeakerParams, output_geometry, plan_crop_path, render_geometry, subject_schedule
from tests.judges import check

FPS = 25.0
LEFT, RIGHT = 240.0, 720.0  # face centres in a 960x540 source


def face(cx: float, motion: float | None) -> FaceBox:
    return FaceBox(cx - 50, 200, cx + 50, 320, 0.9, motion=motion)


def turns_words(schedule: list[tuple[str, float, float]]) -> list[Word]:
    """Two words a second over each (speaker, start, end) turn."""
    words = []
    for spk, a, b in schedule:
        t = a
        while t + 0.4 <= b + 1e-9:
            words.append(Word(t, t + 0.4, "word", speaker=spk))
            t += 0.5
    return words


def samples_for(schedule, duration: float, faces=(LEFT, RIGHT), rate: float = 4.0, seed: int = 0):
    """Face samples at ``rate``/s; the face of the speaker talking at t has a moving mouth."""
    rng = np.random.default_rng(seed)
    owner = {"A": 0, "B": 1}
    out = []
    for k in range(int(duration * rate)):
        t = k / rate
        talking = {owner[s] for s, a, b in schedule if a <= t <= b}
        boxes = []
        for i, cx in enumerate(faces):
            m = (6.0 + 4.0 * rng.random()) if i in talking and rng.random() > 0.2 else 0.3 * rng.random()
            boxes.append(face(cx + rng.normal(0, 2), m))
        out.append(FaceSample(t, tuple(boxes)))
    return out


GEO = output_geometry(960, 540, "9:16")
ALTERNATING = [("A", 0.5, 3.5), ("B", 4.1, 8.0), ("A", 8.6, 11.0), ("B", 11.6, 15.5)]


def centre(path: CropPath, k: int, crop_w: int) -> float:
    return path.x[k] + crop_w / 2


def test_the_camera_follows_the_talking_face_and_cuts_once_per_turn():
    samples = samples_for(ALTERNATING, 16.0)
    path = plan_crop_path(samples, GEO, FPS, 0.0, 16.0, words=turns_words(ALTERNATING))
    assert path.subject == "speakers"
    links = {lk.speaker: lk for lk in path.links}
    assert abs(links["A"].face_x - LEFT) < 10 and abs(links["B"].face_x - RIGHT) < 10
    assert all(lk.confidence >= 0.5 for lk in path.links)
    x = np.array(path.x)
    for spk, a, b in ALTERNATING:
        want = LEFT if spk == "A" else RIGHT
        ks = range(int((a + 0.5) * FPS), int(b * FPS))
        on = [abs(centre(path, k, GEO.crop_w) - want) < 50 for k in ks]
        assert np.mean(on) >= 0.9, (spk, a, np.mean(on))
        # no oscillation: the camera is still (or makes one move) inside each turn
        seg = np.abs(np.diff(x[int(a * FPS): int(b * FPS)]))
        assert (seg > 0).sum() <= 15
    # the faces are far apart (> half a crop width): every change is a single-frame cut
    jumps = np.nonzero(np.abs(np.diff(x)) > 1.0)[0]
    assert len(jumps) == len(ALTERNATING) - 1
    # each cut falls in the pause before the new speaker's first word
    for j, (_, a, _) in zip(jumps, ALTERNATING[1:], strict=True):
        assert a - 0.7 <= (j + 1) / FPS <= a + 0.05


def test_short_interjections_and_fast_exchanges_do_not_move_the_camera():
    talk = [("A", 0.3, 5.0), ("B", 5.2, 5.6), ("A", 5.9, 9.0), ("B", 9.2, 10.2), ("A", 10.4, 14.0)]
    sp = SpeakerParams()
    samples = samples_for(talk, 14.5)
    path = plan_crop_path(samples, GEO, FPS, 0.0, 14.5, words=turns_words(talk))
    x = np.array(path.x)
    changes = np.nonzero(np.abs(np.diff(x)) > 1.0)[0]
    # the 0.4 s "yeah" is ignored; the 1 s turn gets the camera, which stays >= hold_s
    assert len(changes) == 2
    assert (changes[1] - changes[0]) / FPS >= sp.hold_s - 1e-6
    # rapid alternation never switches faster than once per hold
    from stages.framing import SpeakerParams as P  # noqa: N814 - local alias

    links = path.links
    ping = [("A" if i % 2 == 0 else "B", i * 0.9, i * 0.9 + 0.85) for i in range(12)]
    sched = subject_schedule([(a, b, s) for s, a, b in ping], links, 0.0, 12.0, P())
    times = [t for t, _ in sched]
    assert all(b - a >= P().hold_s for a, b in zip(times, times[1:], strict=False))


def test_close_faces_get_an_eased_pan_not_a_cut():
    near = (420.0, 560.0)  # 140 px apart: less than half the 304 px crop
    samples = samples_for(ALTERNATING, 16.0, faces=near)
    path = plan_crop_path(samples, GEO, FPS, 0.0, 16.0, words=turns_words(ALTERNATING))
    assert path.subject == "speakers"
    steps = np.abs(np.diff(np.array(path.x)))
    assert steps.max() < 25  # spread over ~0.6 s, no jump
    assert steps.sum() > 3 * 120  # yet it did travel to each speaker


def test_one_face_or_no_speakers_is_framed_exactly_as_before():
    talk = ALTERNATING
    one = [FaceSample(s.t, s.faces[:1]) for s in samples_for(talk, 16.0)]
    before = plan_crop_path(one, GEO, FPS, 0.0, 16.0)
    assert plan_crop_path(one, GEO, FPS, 0.0, 16.0, words=turns_words(talk)) == before
    two = samples_for(talk, 16.0)
    single = [Word(w.start, w.end, w.text, speaker="A") for w in turns_words(talk)]
    assert plan_crop_path(two, GEO, FPS, 0.0, 16.0, words=single) == plan_crop_path(two, GEO, FPS, 0.0, 16.0)
    # motion not measured (e.g. an older cached analysis): one subject, no links
    blind = [FaceSample(s.t, tuple(FaceBox(b.x1, b.y1, b.x2, b.y2, b.score) for b in s.faces)) for s in two]
    path = plan_crop_path(blind, GEO, FPS, 0.0, 16.0, words=turns_words(talk))
    assert path.subject == "face" and not path.links


def test_split_plans_two_panels_and_falls_back_off_9_16():
    samples = samples_for(ALTERNATING, 16.0)
    words = turns_words(ALTERNATING)
    path = plan_crop_path(samples, GEO, FPS, 0.0, 16.0, words=words, layout="split")
    assert path.subject == "split" and len(path.x2) == len(path.x) == 400
    pw, ph = path.panel
    assert abs(pw / ph - 9 / 8) < 0.02 and ph <= 540
    geo = render_geometry(GEO, path)
    assert geo.mode == "split" and (geo.crop_w, geo.crop_h) == (pw, ph)
    top = np.array(path.x) + pw / 2
    bottom = np.array(path.x2) + pw / 2
    assert np.all(np.abs(top - LEFT) < 50) and np.all(np.abs(bottom - RIGHT) < 50)
    # 1:1 cannot split: it follows the speaker and says so
    square = output_geometry(960, 540, "1:1")
    fallback = plan_crop_path(samples, square, FPS, 0.0, 16.0, words=words, layout="split")
    assert fallback.subject == "speakers" and "9:16" in fallback.note
    # only one face on screen for most of the clip: follow instead
    sparse = [FaceSample(s.t, s.faces if s.t < 4 else s.faces[:1]) for s in samples]
    assert plan_crop_path(sparse, GEO, FPS, 0.0, 16.0, words=words, layout="split").subject != "split"


# -- whole jobs on a generated interview -------------------------------------------------------


@pytest.fixture(scope="module")
def interview(tmp_path_factory):
    from tests.conftest import need_tool

    need_tool("espeak-ng")
    from stages.speech import load_voice_encoder

    if load_voice_encoder()[0] is None:
        pytest.skip("the 'interviews' extra (speaker model) is not installed")
    from scripts.make_interview_media import interview_video

    folder = tmp_path_factory.mktemp("two_faces")
    truth = interview_video(folder / "interview.mp4", folder, size=(640, 360))
    return folder / "interview.mp4", truth


def run_layout(source, tmp_path, settings, layout: str, captions: str = "none"):
    from clipora.compose import run_job
    from engine.options import ProcessOptions
    from engine.pipeline import cached_result

    work = tmp_path / "work"
    manifest = run_job(source, tmp_path / "out", ProcessOptions.build(
        mode="none", caption_preset=captions, layout=layout, remove_ai_voice=False), settings, workdir=work)
    path = cached_result(work, "reframe", 1)
    return manifest, path, tmp_path / "out" / "clip_01.mp4"


def frames_at(path, times):
    """Output frames (RGB) shown at clip times ``times``."""
    out, want = {}, sorted(times)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for fr in c.decode(s):
            t = float(fr.pts * s.time_base)
            while want and t >= want[0] - 0.02:
                out[want.pop(0)] = fr.to_ndarray(format="rgb24")
            if not want:
                break
    return out


def saturation(rgb: np.ndarray) -> float:
    """Mean chroma of a region: the host is in colour, the guest greyscale."""
    rgb = rgb.astype(np.float32)
    return float(np.mean(rgb.max(axis=2) - rgb.min(axis=2)))


@pytest.mark.slow
def test_follow_keeps_the_talking_face_in_frame(interview, tmp_path, settings):
    source, truth = interview
    manifest, path, clip = run_layout(source, tmp_path, settings, "follow")
    framing = manifest["clips"][0]["framing"]
    assert framing["layout"] == "follow" and len(framing["speakers"]) == 2
    by_face = {("host" if v["faceX"] < 320 else "guest"): v for v in framing["speakers"].values()}
    assert set(by_face) == {"host", "guest"}
    # mouth motion (from the detector's boxes) against speaker turns (from the voice model); measured 0.73
    check("follow: weakest speaker-to-face link (correlation)", min(v["confidence"] for v in by_face.values()), 0.4)
    geo = output_geometry(640, 360, "9:16")
    x = np.array(path.x)
    on, total, checks = 0, 0, {}
    for turn in truth["turns"]:
        x1, _, x2, _ = truth["faces"][turn["speaker"]]
        ks = np.arange(int(np.ceil((turn["start"] + 0.5) * path.fps)), int(turn["end"] * path.fps))
        c = x[ks] + geo.crop_w / 2
        inside = (c >= x1) & (c <= x2)
        # measured 1.0 in every turn
        check("follow: share of a turn framed on its speaker", inside.mean(), 0.9, detail=turn)
        on, total = on + int(inside.sum()), total + len(ks)
        jumps = int((np.abs(np.diff(x[int(turn["start"] * path.fps): int(turn["end"] * path.fps)])) > 0).sum())
        assert jumps <= 15, turn  # still within a turn: no oscillation
        checks[(turn["start"] + turn["end"]) / 2] = turn["speaker"]
    check("follow: share of all turns framed on the speaker", on / total, 0.9)
    # on the rendered pixels: the face in the middle of the frame is the speaker's (colour = host)
    shots = frames_at(clip, list(checks))
    for t, rgb in shots.items():
        h, w = rgb.shape[:2]
        middle = rgb[int(0.4 * h): int(0.6 * h), int(0.35 * w): int(0.65 * w)]
        assert (saturation(middle) > 25) == (checks[t] == "host"), (t, checks[t], saturation(middle))


@pytest.mark.slow
def test_split_shows_both_faces_in_their_panels(interview, tmp_path, settings, ctx):
    from stages.captions import CaptionsRequest, CaptionsStage
    from stages.framing import CenterFaceDetector, centerface_model_path

    source, truth = interview
    manifest, path, clip = run_layout(source, tmp_path, settings, "split", captions="karaoke")
    assert manifest["clips"][0]["framing"]["layout"] == "split"
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        w, h = s.width, s.height
    assert (w, h) == (720, 1280)
    detector = CenterFaceDetector(centerface_model_path(settings), threads=2)
    shots = frames_at(clip, [2.0, 5.0, 12.0, 20.0])
    assert len(shots) == 4
    track = CaptionsStage().process(CaptionsRequest((), "karaoke", w, h, 0.0, 1.0, tmp_path / "c.ass"), ctx)
    band = track.band
    assert band[0] > h // 2  # the caption band lies wholly inside the bottom panel, clear of the seam
    for t, rgb in shots.items():
        top, bottom = rgb[: h // 2], rgb[h // 2:]
        for half, want_colour in ((top, True), (bottom, False)):
            faces = detector.detect(np.ascontiguousarray(half))[0]
            assert len(faces) == 1, (t, faces)
            f = faces[0]
            assert 0.25 * w < f.cx < 0.75 * w and f.y1 >= 0 and f.y2 <= h // 2
            region = half[int(f.y1): int(f.y2), int(f.x1): int(f.x2)]
            assert (saturation(region) > 25) == want_colour, (t, saturation(region))
        # the bottom face's eyes and mouth sit below the caption band's centre: captions stay legible
        assert faces[0].cy + h // 2 > (band[0] + band[1]) / 2

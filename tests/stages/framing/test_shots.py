"""Shot boundaries: cuts found on the exact frame, tracks and the camera per shot, per-shot layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.types import FaceBox, FaceSample, FaceScan, Shot, Word, from_jsonable, to_jsonable
from stages.framing import FaceDetectRequest, FaceDetectStage, output_geometry, plan_crop_path
from stages.framing.shots import CutDetector, find_cuts, shots_from_cuts
from stages.framing.tracks import track_faces
from stages.media import iter_video_frames, probe_media, upright_i420
from tests.judges import check
from tests.stages.framing.shots_media import REAL_CUT_FRAMES, edited, real_cuts

MEDIA = Path(__file__).resolve().parents[2] / "media"
GEO = output_geometry(1280, 720, "9:16")


def cut_frames(path: Path, start: float = 0.0, end: float | None = None) -> list[int]:
    """The cut detector alone over [start, end) of a file: the cut frames' indices on the source grid."""
    media = probe_media(path)
    det = CutDetector()
    for t, frame in iter_video_frames(media, start, media.duration if end is None else end):
        det.add(t, *upright_i420(frame, 0))
    return [round(s.start * media.fps) for s in det.shots(start, end or media.duration)[1:]]


@pytest.fixture(scope="module")
def scan(tmp_path_factory, settings) -> tuple[FaceScan, dict]:
    from engine.backends import select_backend
    from engine.stage import StageContext

    path, truth = edited(tmp_path_factory)
    ctx = StageContext("shots", tmp_path_factory.mktemp("work"), settings, select_backend("cpu"))
    stage = FaceDetectStage()
    stage.setup(ctx)
    media = probe_media(path)
    result = stage.process(FaceDetectRequest(media, 0.0, media.duration), ctx)
    stage.teardown()
    return result, truth


# -- (a) the cuts --------------------------------------------------------------------------------


def test_the_faces_stage_finds_every_cut_on_its_frame(scan):
    result, truth = scan
    found = [round(s.start * truth["fps"]) for s in result.shots[1:]]
    assert len(found) == len(truth["cut_frames"])
    worst = max(abs(a - b) for a, b in zip(found, truth["cut_frames"], strict=True))
    check("shots: edited media, worst cut frame error (frames)", worst, 1, at_least=False)
    assert worst == 0  # every frame is decoded for the face samples anyway: the exact frame
    assert result.shots[0].start == 0.0 and result.shots[-1].end == pytest.approx(truth["duration"])
    assert all(a.end == b.start for a, b in zip(result.shots, result.shots[1:], strict=False))
    # the shots are cached with the faces step: they survive the step cache's JSON round trip
    assert from_jsonable(to_jsonable(result)) == result
    assert len(result) == len(result.samples) and list(result)[0] == result.samples[0]


def test_cuts_between_real_shots_on_their_frame(tmp_path_factory, shared_media):
    """Real footage: another person, then a zoomed angle of the same man on the same backdrop."""
    found = cut_frames(real_cuts(tmp_path_factory, shared_media))
    assert len(found) == len(REAL_CUT_FRAMES)
    worst = max(abs(a - b) for a, b in zip(found, REAL_CUT_FRAMES, strict=True))
    check("shots: real cuts, worst cut frame error (frames)", worst, 1, at_least=False)


@pytest.mark.parametrize("name", ["talking_head_1.mp4", "talking_head_2.mp4"])
def test_no_cut_in_a_real_talking_head(shared_media, name):
    assert cut_frames(shared_media / name) == []


def test_no_cut_in_a_gesturing_vlog_and_its_jump_cut_is_one(shared_media):
    """vertical_vlog_hevc.mp4: 9 s of a man talking with his hands (no cut), then a jump cut at
    frame 271 (same camera and backdrop, the pose jumps; checked by eye), which is a cut for the camera."""
    assert cut_frames(shared_media / "vertical_vlog_hevc.mp4", 0.0, 8.9) == []
    assert cut_frames(shared_media / "vertical_vlog_hevc.mp4", 8.0, 12.0) == [271]


def test_no_cut_in_moving_faces_or_at_a_flash():
    # the committed media: a face walking across the room, one swaying, single white flash frames
    for name in ("face_moving.mp4", "speech_topics.mp4", "sync_cfr.mp4"):
        if not (MEDIA / name).exists():
            pytest.skip(f"test media {name} not generated")
        assert cut_frames(MEDIA / name, 0.0, 12.0) == [], name


def test_find_cuts_on_signatures():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (2, 48 * 27 + 2 * 24 * 13)).astype(np.uint8)
    times = [i / 25 for i in range(100)]
    steady = np.stack([a] * 50 + [b] * 50)
    assert [i for i, _ in find_cuts(times, steady)] == [50]
    # a pan: every frame differs from the last by as much as a cut -> no spike, no cut
    pan = np.stack([np.roll(a, 3 * i) for i in range(100)])
    assert find_cuts(times, pan) == []
    # two cuts 0.3 s apart: the second is too soon for a shot of its own
    quick = np.stack([a] * 50 + [b] * 8 + [a ^ 0x55] * 42)
    assert [i for i, _ in find_cuts(times, quick)] == [50]
    assert shots_from_cuts(2.0, 6.0, [(3.0, 40.0), (7.0, 9.0)]) == (Shot(2.0, 3.0), Shot(3.0, 6.0, score=40.0))


# -- (b) tracks never span a cut -------------------------------------------------------------------


def test_no_track_spans_a_cut(scan):
    result, _ = scan
    tracks = track_faces(result.samples, cuts=result.cuts)
    assert tracks
    for tr in tracks:
        inside = [k for k, s in enumerate(result.shots) if s.start <= tr.start + 1e-6 < s.end]
        assert len(inside) == 1
        shot = result.shots[inside[0]]
        assert tr.end < shot.end, f"track {tr.id} runs from {tr.start} into the next shot"


def test_a_cut_between_two_people_at_one_place_splits_the_track():
    """Two people framed alike on either side of a cut: one track without the cut, two with it."""
    def box(cx: float) -> FaceBox:
        return FaceBox(cx - 60, 200, cx + 60, 360, 0.9)

    samples = [FaceSample(i * 0.25, (box(640 + (30 if i >= 12 else 0)),)) for i in range(24)]
    assert len(track_faces(samples)) == 1
    split = track_faces(samples, cuts=[3.0])
    assert [(tr.start, tr.end) for tr in split] == [(0.0, 2.75), (3.0, 5.75)]


# -- (c) the camera jumps on the cut frame ------------------------------------------------------------


def test_the_crop_path_jumps_on_the_cut_frame(scan):
    result, truth = scan
    fps = truth["fps"]
    path = plan_crop_path(result.samples, GEO, fps, 0.0, truth["duration"], shots=result.shots)
    x = np.array(path.x)
    assert len(x) == truth["frames"]
    pans = 0
    for k, shot in enumerate(truth["shots"]):
        cx = truth["face_centres"][k]
        frames = range(shot["first"], shot["last"] + 1)
        if cx is None:
            continue
        # every frame of a face shot frames its own shot's face, from its first frame to its last
        pos = (cx - x[list(frames)]) / GEO.crop_w
        assert np.all((pos > 0.2) & (pos < 0.8)), (k, pos.min(), pos.max())
    for c in truth["cut_frames"]:
        # no pan across a cut: the two frames before and the two after the cut hold still
        pans += int(abs(x[c - 1] - x[c - 2]) > 1 or abs(x[c + 1] - x[c]) > 1)
    check("shots: pans across a cut", pans, 0, at_least=False)
    jumps = [abs(x[c] - x[c - 1]) for c in truth["cut_frames"][:1]]  # A -> B: 620 px apart
    assert min(jumps) > 0.5 * GEO.crop_w


def test_the_tripod_confirmation_restarts_per_shot():
    """A face that sits off-centre from a shot's first frame is framed there at once (the camera is
    placed on the shot's first detection), not after a confirmation delay carried over from the
    previous shot."""
    def box(cx: float) -> FaceBox:
        return FaceBox(cx - 50, 250, cx + 50, 390, 0.9)

    samples = [FaceSample(i * 0.25, (box(300.0 if i < 16 else 1000.0),)) for i in range(32)]
    path = plan_crop_path(samples, GEO, 25.0, 0.0, 8.0, shots=(Shot(0.0, 4.0), Shot(4.0, 8.0)))
    x = np.array(path.x)
    assert x[99] == x[0] and x[100] == x[199]
    assert abs((1000.0 - x[100]) / GEO.crop_w - 0.5) < 0.05  # centred on the new face on frame 100


# -- (d) per-shot layouts ------------------------------------------------------------------------------


def test_a_text_card_is_fit_and_faces_are_face(scan):
    result, truth = scan
    path = plan_crop_path(result.samples, GEO, truth["fps"], 0.0, truth["duration"], shots=result.shots)
    assert [s.layout for s in path.shots] == ["face", "face", "fit", "face"]
    assert path.subject == "shots"
    # a clip of the card alone is fit; a resize/pad geometry shows every shot whole already
    card = Shot(6.2, 9.2)
    only = plan_crop_path([s for s in result.samples if 6.2 <= s.t < 9.2], GEO, 25.0, 6.2, 9.2, shots=(card,))
    assert only.subject == "fit" and [s.layout for s in only.shots] == ["fit"]
    wide = plan_crop_path(result.samples, output_geometry(1280, 720, "16:9"), 25.0, 0.0, 12.0, shots=result.shots)
    assert {s.layout for s in wide.shots} == {"full"}


def test_two_speakers_too_far_apart_without_split_are_fit():
    def box(cx: float) -> FaceBox:
        return FaceBox(cx - 60, 250, cx + 60, 410, 0.9)

    two = [FaceSample(i * 0.25, (box(200.0), box(1080.0))) for i in range(16)]
    path = plan_crop_path(two, GEO, 25.0, 0.0, 4.0, shots=(Shot(0.0, 4.0),))
    assert [s.layout for s in path.shots] == ["fit"] and "too far apart" in path.note
    near = [FaceSample(i * 0.25, (box(560.0), box(720.0))) for i in range(16)]
    assert [s.layout for s in plan_crop_path(near, GEO, 25.0, 0.0, 4.0, shots=(Shot(0.0, 4.0),)).shots] == ["face"]
    # a tiny face (a wide crowd shot) is no reliable subject either
    tiny = [FaceSample(i * 0.25, (FaceBox(600, 300, 620, 325, 0.8),)) for i in range(16)]
    assert [s.layout for s in plan_crop_path(tiny, GEO, 25.0, 0.0, 4.0, shots=(Shot(0.0, 4.0),)).shots] == ["fit"]


def test_one_shot_plans_like_the_planner_without_shots():
    """A clip with no cut gets the camera it always got (tripod, active speaker, split)."""
    def box(cx: float, mouth: float) -> FaceBox:
        return FaceBox(cx - 70, 220, cx + 70, 400, 0.9, motion=mouth)

    words, samples = [], []
    for i in range(64):
        t = i * 0.25
        left_talks = (t // 4) % 2 == 0
        on = 3.0 * (i % 2)
        samples.append(FaceSample(t, (box(300.0, on * left_talks), box(980.0, on * (not left_talks)))))
    for k in range(4):
        spk = "A" if k % 2 == 0 else "B"
        words += [Word(k * 4 + 0.2 + j * 0.5, k * 4 + 0.6 + j * 0.5, "word", speaker=spk) for j in range(7)]
    for layout in ("follow", "split"):
        plain = plan_crop_path(samples, GEO, 25.0, 0.0, 16.0, words=words, layout=layout)
        shot = plan_crop_path(samples, GEO, 25.0, 0.0, 16.0, words=words, layout=layout, shots=(Shot(0.0, 16.0),))
        assert plain.subject in ("speakers", "split")
        assert (shot.subject, shot.x, shot.x2, shot.y2, shot.panel) == (plain.subject, plain.x, plain.x2, plain.y2,
                                                                        plain.panel)
        assert [s.layout for s in shot.shots] == ["split" if layout == "split" else "face"]


def test_speakers_are_linked_per_shot():
    """Two angles of one conversation: the faces sit elsewhere after the cut; each shot links its
    own tracks to the speakers and follows whoever talks, from the cut frame on."""
    def box(cx: float, mouth: float) -> FaceBox:
        return FaceBox(cx - 70, 220, cx + 70, 400, 0.9, motion=mouth)

    places = {0: (260.0, 1020.0), 1: (1040.0, 240.0)}  # the second angle shows them the other way round
    samples, words = [], []
    for i in range(64):
        t = i * 0.25
        a_talks = (t // 2) % 2 == 0
        left, right = places[int(t >= 8.0)]
        on = 3.0 * (i % 2)  # A sits at places[shot][0], B at places[shot][1]
        samples.append(FaceSample(t, (box(left, on * a_talks), box(right, on * (not a_talks)))))
    for k in range(8):
        spk = "A" if k % 2 == 0 else "B"
        words += [Word(k * 2 + 0.1 + j * 0.4, k * 2 + 0.4 + j * 0.4, "word", speaker=spk) for j in range(4)]
    path = plan_crop_path(samples, GEO, 25.0, 0.0, 16.0, words=words, shots=(Shot(0.0, 8.0), Shot(8.0, 16.0)))
    assert [s.layout for s in path.shots] == ["face", "face"] and path.subject == "speakers"
    assert len(path.links) == 4 and {lk.speaker for lk in path.links} == {"A", "B"}  # two per shot
    x = np.array(path.x)
    for k in range(400):
        t = k / 25.0
        if t % 2 < 0.6 or t % 2 > 1.7:
            continue  # around the turn changes
        a_talks = (t // 2) % 2 == 0
        left, right = places[int(t >= 8.0)]
        cx = left if a_talks else right
        assert 0.2 < (cx - x[k]) / GEO.crop_w < 0.8, (t, x[k])

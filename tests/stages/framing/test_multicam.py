"""Multi-camera podcasts (issue 17, item 3): a wide shot and close-ups, an editor cutting between them.

The media are made at test time by scripts/make_multicam_media.py: a generated podcast (two of
the project's generated people with their own espeak-ng voices; a wide shot of both, a close-up
of each, cuts on and off the turn boundaries, a reaction shot, wide shots during a turn and across
a change of speaker) and, where ../shared/media is present, the real talking heads cut together
with their own voices (a side-by-side wide shot, a close-up of each). Each file is scanned once by
the faces stage and planned by the reframe stage for 9:16, as a clip unit does; the speakers'
words come from the generator's truth (who speaks when), as diarization would label them.

Asserted on every source and layout (``judge`` in the generator): >= 95 % of the frames where
someone speaks and the shot shows them have the speaker in the crop, 0 pans across a cut, and
the camera holds >= 1 s between two moves inside a shot.
"""

from __future__ import annotations

import pytest

from engine.types import FaceBox, FaceSample, Shot, Word
from stages.framing import (
    FaceDetectRequest,
    FaceDetectStage,
    ReframeRequest,
    ReframeStage,
    output_geometry,
    plan_crop_path,
)
from stages.framing.speakers import SpeakerParams, link_solo_speaker
from stages.framing.tracks import track_faces
from stages.media import probe_media
from tests.judges import check

GEO = output_geometry(1280, 720, "9:16")


def _scan(path, tmp_path_factory, settings):
    from engine.backends import select_backend
    from engine.stage import StageContext

    ctx = StageContext("multicam", tmp_path_factory.mktemp("work"), settings, select_backend("cpu"))
    stage = FaceDetectStage()
    stage.setup(ctx)
    media = probe_media(path)
    scan = stage.process(FaceDetectRequest(media, 0.0, media.duration), ctx)
    stage.teardown()
    return scan, ctx


@pytest.fixture(scope="module")
def generated(tmp_path_factory, settings):
    from scripts.make_multicam_media import make
    from tests.conftest import need_tool

    need_tool("espeak-ng")
    need_tool("ffmpeg")
    folder = tmp_path_factory.mktemp("multicam")
    truth = make(folder / "podcast.mp4", folder)
    scan, ctx = _scan(folder / "podcast.mp4", tmp_path_factory, settings)
    return scan, truth, ctx


@pytest.fixture(scope="module")
def real(tmp_path_factory, settings, shared_media):
    from scripts.make_multicam_media import make_real
    from tests.conftest import need_tool

    need_tool("ffmpeg")
    folder = tmp_path_factory.mktemp("multicam_real")
    truth = make_real(folder / "real_podcast.mp4", folder, shared_media)
    scan, ctx = _scan(folder / "real_podcast.mp4", tmp_path_factory, settings)
    return scan, truth, ctx


def plan(scan, truth, ctx, layout: str):
    """The reframe stage on the faces stage's scan, as the clip unit's reframe step calls it."""
    from scripts.make_multicam_media import words_from_truth

    words = tuple(Word(a, b, text, speaker=spk) for a, b, text, spk in words_from_truth(truth))
    return ReframeStage().process(ReframeRequest(scan.samples, GEO, float(truth["fps"]), 0.0, truth["duration"],
                                                 words=words, layout=layout, shots=scan.shots), ctx)


def assert_keeps_the_speaker_on_screen(name: str, scan, truth, ctx, layout: str):
    from scripts.make_multicam_media import judge

    assert [round(s.start * truth["fps"]) for s in scan.shots[1:]] == truth["cut_frames"]  # every cut, on its frame
    path = plan(scan, truth, ctx, layout)
    got = judge(truth, path, GEO.crop_w)
    kinds = [s["kind"] for s in truth["shots"]]
    layouts = [s.layout for s in path.shots]
    # close-ups follow their face; wide shots the active speaker (split: both, stacked); nothing is fit
    want = ["split" if layout == "split" and k == "wide" else "face" for k in kinds]
    assert layouts == want, (layouts, want)
    check(f"multicam: {name} {layout}, share of speaking frames with the speaker in the crop",
          got["speaker_shown"], 0.95, detail=got["missed_frames"])
    check(f"multicam: {name} {layout}, pans across a cut", got["pans_across_cuts"], 0, at_least=False)
    if got["min_hold_s"] is not None:
        check(f"multicam: {name} {layout}, shortest hold between moves in a shot (s)", got["min_hold_s"], 1.0)
    return path, got


@pytest.mark.parametrize("layout", ["follow", "split"])
def test_generated_podcast_keeps_the_speaker_on_screen(generated, layout):
    scan, truth, ctx = generated
    path, got = assert_keeps_the_speaker_on_screen("generated", scan, truth, ctx, layout)
    assert got["speaker_frames"] > 0.7 * truth["frames"]
    # each wide shot links its own faces (a wide shot with one person talking: that person)
    assert {lk.speaker for lk in path.links} == {"host", "guest"}
    if layout == "follow":
        # the wide shots with a change of speaker make one move each (a cut across the table)
        assert got["moves_in_shots"] >= 2


@pytest.mark.parametrize("layout", ["follow", "split"])
def test_real_podcast_keeps_the_speaker_on_screen(real, layout):
    scan, truth, ctx = real
    path, _ = assert_keeps_the_speaker_on_screen("real", scan, truth, ctx, layout)
    assert {lk.speaker for lk in path.links} == {"A", "B"}


def test_a_reaction_shot_frames_the_listener(generated):
    """A close-up of the listener while the other talks off screen: the camera stays on that face."""
    scan, truth, ctx = generated
    path = plan(scan, truth, ctx, "follow")
    reactions = [s for s in truth["shots"] if s["reaction"]]
    assert reactions
    for s in reactions:
        (listener,) = s["people"]
        for i in range(s["first"], s["last"] + 1):
            b = truth["boxes"][i][listener]
            assert 0.2 < ((b[0] + b[2]) / 2 - path.x[i]) / GEO.crop_w < 0.8, (i, path.x[i])


# -- one person talking in a shot of two ---------------------------------------------------------------


def _two_faces(mouth_left, mouth_right, n: int = 16):
    def box(cx: float, m: float) -> FaceBox:
        return FaceBox(cx - 60, 250, cx + 60, 410, 0.9, motion=m)

    return [FaceSample(i * 0.25, (box(250.0, mouth_left(i)), box(1030.0, mouth_right(i)))) for i in range(n)]


WORDS = [Word(0.2 + 0.4 * j, 0.5 + 0.4 * j, "word", speaker="A") for j in range(9)]


def test_one_speaker_in_a_wide_shot_is_followed():
    """Two faces too far apart for one crop, one of them talking the whole shot: no turn to correlate
    with, so the face whose mouth moves is followed (before: the shot was shown whole)."""
    talking = _two_faces(lambda i: 3.0 + 2.0 * (i % 2), lambda i: 0.05 * (i % 3))
    (link,) = link_solo_speaker(track_faces(talking), talking, WORDS, 0.0, 4.0, SpeakerParams())
    assert link.speaker == "A" and abs(link.face_x - 250.0) < 1 and link.confidence > 0.9
    path = plan_crop_path(talking, GEO, 25.0, 0.0, 4.0, words=WORDS, shots=(Shot(0.0, 4.0),))
    assert [s.layout for s in path.shots] == ["face"] and [lk.speaker for lk in path.links] == ["A"]
    assert all(0.3 < (250.0 - x) / GEO.crop_w < 0.7 for x in path.x)
    # nobody's mouth moves (the speaker is off screen) or both move alike: no link, shown whole
    for left, right in ((lambda i: 0.0, lambda i: 0.02), (lambda i: 3.0, lambda i: 2.5)):
        faces = _two_faces(left, right)
        assert link_solo_speaker(track_faces(faces), faces, WORDS, 0.0, 4.0, SpeakerParams()) == ()
        assert [s.layout for s in plan_crop_path(faces, GEO, 25.0, 0.0, 4.0, words=WORDS,
                                                 shots=(Shot(0.0, 4.0),)).shots] == ["fit"]
    # two speakers in the window: the turn-taking correlation (link_speakers) decides, not this
    two = [*WORDS[:4], *(Word(w.start, w.end, w.text, speaker="B") for w in WORDS[4:])]
    assert link_solo_speaker(track_faces(talking), talking, two, 0.0, 4.0, SpeakerParams()) == ()

"""clip_NN.srt and clip_NN.vtt: the caption track's groups, words and times, read back with srt and webvtt."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import srt
import webvtt

from engine.types import Word
from stages.captions import CaptionsRequest, CaptionsStage, build_caption_track
from stages.captions.subtitles import render_vtt, vtt_escape
from tests.stages.captions.test_captions import _words as timed_words

PRESETS = ["none", "beasty", "karaoke", "mozi"]
TEXT = ("So here's the thing nobody tells you about making 100 videos. It changes everything! "
        "Honestly we kept going, and going until the audience finally showed up")
TAG = re.compile(r"<(\d{2}):(\d{2}):(\d{2})\.(\d{3})>")


def _words(text: str = TEXT, start: float = 10.0) -> list[Word]:
    return timed_words(text, start=start)  # the caption tests' speech timing, over this file's text


def _ms(t: float) -> int:
    return round(t * 1000)


def _tags_ms(raw: str) -> list[int]:
    return [((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms) for h, m, s, ms in TAG.findall(raw)]


def _ass_events(ass: str) -> list[tuple[float, float, str]]:
    out = []
    for line in ass.splitlines():
        if line.startswith("Dialogue:"):
            f = line.split(",", 9)
            secs = [int(x[0]) * 3600 + int(x[2:4]) * 60 + float(x[5:]) for x in (f[1], f[2])]
            out.append((secs[0], secs[1], re.sub(r"\{[^}]*\}", "", f[9]).replace("\\N", " ")))
    return out


def _written(tmp_path: Path, words: list[Word], preset: str, start: float, end: float, ctx):
    ass = tmp_path / "clip_01.ass"
    track = CaptionsStage().process(CaptionsRequest(words, preset, 720, 1280, start, end, ass), ctx)
    return track, ass.read_text(), srt.parse(ass.with_suffix(".srt").read_text()), \
        webvtt.read(str(ass.with_suffix(".vtt")))


@pytest.mark.parametrize("preset", PRESETS)
def test_srt_and_vtt_hold_the_tracks_groups_words_and_times(preset: str, tmp_path: Path, ctx) -> None:
    words = _words()
    clip_start, clip_end = words[2].start, words[-3].end  # clip-relative: the track starts at 0
    track, ass, subs, vtt = _written(tmp_path, words, preset, clip_start, clip_end, ctx)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_01.ass", "clip_01.srt", "clip_01.vtt"]
    groups = track.events
    subs = list(subs)
    assert len(groups) == len(subs) == len(vtt.captions) >= 5
    events = _ass_events(ass)
    for g, sub, cue in zip(groups, subs, vtt.captions, strict=True):
        assert 0.0 <= g.start < g.end <= clip_end - clip_start + 1e-9
        # same times, to the millisecond (the .ass has centiseconds)
        assert (sub.start.total_seconds(), sub.end.total_seconds()) == (_ms(g.start) / 1000, _ms(g.end) / 1000)
        assert (cue.start_time.in_milliseconds(), cue.end_time.in_milliseconds()) == (_ms(g.start), _ms(g.end))
        # same words, as displayed (the preset's casing)
        assert sub.content.split() == list(g.texts)
        assert html.unescape(cue.text).split() == list(g.texts)
        # the .ass shows this group from g.start to g.end (one event, or one per active word)
        mine = [e for e in events if g.start - 0.006 <= e[0] and e[1] <= g.end + 0.006]
        assert mine and mine[0][0] == pytest.approx(g.start, abs=0.006)
        assert mine[-1][1] == pytest.approx(g.end, abs=0.006)
        assert all(e[2].split() == list(g.texts) for e in mine)
    shown = [t for g in groups for t in g.texts]
    expected = [w.text for w in words if clip_start <= (w.start + w.end) / 2 < clip_end]
    assert len(shown) == len(expected) and [s.lower().strip(",.;:") for s in shown] == \
        [e.lower().strip(",.;:") for e in expected]


@pytest.mark.parametrize("preset", PRESETS)
def test_vtt_word_timestamps_are_each_words_start_in_order_inside_the_cue(preset: str, tmp_path: Path,
                                                                          ctx) -> None:
    words = _words(start=0.0)
    track, _, _, vtt = _written(tmp_path, words, preset, 0.0, 60.0, ctx)
    assert webvtt.WebVTT.from_string((tmp_path / "clip_01.vtt").read_text(), strict=True).captions  # well-formed
    for g, cue in zip(track.events, vtt.captions, strict=True):
        a, b = cue.start_time.in_milliseconds(), cue.end_time.in_milliseconds()
        ts = _tags_ms(cue.raw_text)
        assert ts == [_ms(w.start) for w in g.words[1:]]
        assert all(a < t < b for t in ts) and ts == sorted(set(ts))
        # each word after the first is preceded by its tag: "w1 <t2>w2 <t3>w3"
        parts = cue.raw_text.split(" ")
        assert not TAG.match(parts[0]) and all(TAG.match(p) for p in parts[1:])


def test_vtt_escapes_and_srt_keeps_the_text_literal(tmp_path: Path, ctx) -> None:
    words = _words("Tom & Jerry <3 cheese > all", start=0.0)
    _, _, subs, vtt = _written(tmp_path, words, "karaoke", 0.0, 10.0, ctx)
    raw = (tmp_path / "clip_01.vtt").read_text()
    assert "&amp;" in raw and "&lt;3" in raw and "&gt;" in raw
    assert "<3" not in raw and " & " not in raw
    assert [TAG.sub("", c.raw_text) for c in vtt.captions] == ["Tom &amp; Jerry &lt;3 cheese", "&gt; all"]
    assert " ".join(html.unescape(c.text) for c in vtt.captions) == "Tom & Jerry <3 cheese > all"
    assert " ".join(s.content for s in subs) == "Tom & Jerry <3 cheese > all"
    assert vtt_escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_preset_none_still_writes_the_words_and_a_clip_without_words_gets_empty_files(tmp_path: Path,
                                                                                      ctx) -> None:
    words = _words(start=0.0)
    track, ass, subs, vtt = _written(tmp_path, words, "none", 0.0, 60.0, ctx)
    assert not track.burned and track.sprite_at(track.events[0].start) is None
    assert [t for c in vtt.captions for t in html.unescape(c.text).split()] == [w.text for w in words]
    assert len(list(subs)) == len(vtt.captions) == len(_ass_events(ass))
    empty = tmp_path / "empty"
    empty.mkdir()
    _, ass, subs, vtt = _written(empty, [], "beasty", 0.0, 10.0, ctx)
    assert list(subs) == [] and vtt.captions == [] and "Dialogue:" not in ass
    assert (empty / "clip_01.vtt").read_text().startswith("WEBVTT")


def test_words_that_start_together_still_give_increasing_timestamps() -> None:
    words = [Word(0.0, 0.2, "a"), Word(0.3, 0.5, "b"), Word(0.3, 0.5, "c"), Word(0.6, 0.8, "d")]
    track = build_caption_track(words, "karaoke", 720, 1280, 0.0, 5.0)
    cue = webvtt.from_string(render_vtt(track.events)).captions[0]
    assert _tags_ms(cue.raw_text) == [300, 301, 600]
    assert cue.text.split() == ["a", "b", "c", "d"]

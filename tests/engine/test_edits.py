"""ClipEdit (engine.edits): strict validation with the spec's error shape, accumulation, options."""

from __future__ import annotations

import pytest

from engine.edits import ClipEdit
from engine.errors import InvalidOptions
from engine.options import ProcessOptions


def test_only_the_fields_set_are_kept_and_words_sorted() -> None:
    edit = ClipEdit.from_json({"start": 1.23456, "words": [{"index": 9, "text": "b"}, {"index": 2, "text": "a"}],
                               "captionPreset": "mozi"})
    assert edit.to_json() == {"start": 1.235, "captionPreset": "mozi",
                              "words": [{"index": 2, "text": "a"}, {"index": 9, "text": "b"}]}
    assert ClipEdit.from_json({}).empty and ClipEdit.from_json(None).empty


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"start": "1"}, "start", "invalid edit 'start'"),
    ({"start": -1}, "start", ">= 0"),
    ({"end": float("nan")}, "end", "invalid edit 'end'"),
    ({"start": 3, "end": 3.5}, "end", "at least 1 s"),
    ({"start": 0, "end": 500}, "end", "at most 180 s"),
    ({"captionPreset": "neon"}, "captionPreset", '"none", "beasty", "karaoke" or "mozi"'),
    ({"aspectRatio": "3:2"}, "aspectRatio", '"9:16"'),
    ({"removeSilence": "yes"}, "removeSilence", "true or false"),
    ({"silenceThreshold": 0.1}, "silenceThreshold", "0.2 to 10"),
    ({"words": {"1": "x"}}, "words", "a list of"),
    ({"words": [{"index": -1, "text": "x"}]}, "index", "words[0].index"),
    ({"words": [{"index": 1, "text": " "}]}, "text", "words[0].text"),
    ({"words": [{"index": 1, "text": "a\nb"}]}, "text", "one line"),
    ({"words": [{"index": 1, "text": "x", "at": 2}]}, "at", "unknown word correction 'at'"),
    ({"trimStart": 1}, "trimStart", "unknown edit field 'trimStart'"),
])
def test_bad_edits_name_their_field(body, field, says) -> None:
    with pytest.raises(InvalidOptions) as err:
        ClipEdit.from_json(body)
    assert err.value.field == field and says in err.value.message, err.value.message


def test_edits_accumulate_over_the_clips_current_one() -> None:
    base = ClipEdit.from_json({"start": 2.0, "end": 9.0, "captionPreset": "beasty",
                               "words": [{"index": 4, "text": "four"}, {"index": 7, "text": "seven"}]})
    new = ClipEdit.from_json({"captionPreset": "mozi", "words": [{"index": 7, "text": "SEVEN"}]})
    merged = new.over(base)
    assert merged.to_json() == {"start": 2.0, "end": 9.0, "captionPreset": "mozi",
                                "words": [{"index": 4, "text": "four"}, {"index": 7, "text": "SEVEN"}]}
    # the window rule holds for the merged window too
    with pytest.raises(InvalidOptions, match="at least 1 s"):
        ClipEdit.from_json({"end": 2.5}).over(base)


def test_rendering_fields_override_the_jobs_options() -> None:
    job = ProcessOptions(caption_preset="beasty", aspect_ratio="9:16", num_clips=5, remove_fillers=True)
    options = ClipEdit.from_json({"aspectRatio": "1:1", "removeFillers": False}).options(job)
    assert (options.caption_preset, options.aspect_ratio, options.num_clips, options.remove_fillers) == \
        ("beasty", "1:1", 5, False)

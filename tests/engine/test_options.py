import pytest
from pydantic import ValidationError

from engine.errors import InvalidOptions
from engine.options import CLIP_LENGTH_RANGES, ProcessOptions


def test_defaults_match_the_api_reference():
    o = ProcessOptions()
    assert o.to_json() == {
        "mode": "ai",
        "numClips": 3,
        "clipLength": "medium",
        "aspectRatio": "9:16",
        "captionPreset": "none",
        "removeAiVoice": True,
        "autoHook": True,
        "prompt": "",
        "genre": "auto",
        "trimStart": 0.0,
        "trimEnd": None,
        "layout": "auto",
    }
    assert CLIP_LENGTH_RANGES == {"short": (3, 15), "medium": (20, 45), "long": (45, 90)}


def test_json_camel_case_round_trip():
    o = ProcessOptions.from_json({"numClips": 5, "captionPreset": "mozi", "aspectRatio": "1:1", "trimEnd": 30})
    assert (o.num_clips, o.caption_preset, o.aspect_ratio, o.trim_end) == (5, "mozi", "1:1", 30.0)
    assert ProcessOptions.from_json(o.to_json()) == o
    assert ProcessOptions.from_json(None) == ProcessOptions()


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"numClips": 0}, "numClips", "1 to 10"),
        ({"numClips": 11}, "numClips", "1 to 10"),
        ({"numClips": "many"}, "numClips", "1 to 10"),
        ({"clipLength": "huge"}, "clipLength", '"short"'),
        ({"aspectRatio": "2:1"}, "aspectRatio", '"9:16"'),
        ({"captionPreset": "comic"}, "captionPreset", '"beasty"'),
        ({"mode": "auto"}, "mode", '"ai"'),
        ({"genre": "news"}, "genre", '"podcast"'),
        ({"trimStart": -1}, "trimStart", ">= 0"),
        ({"trimStart": 10, "trimEnd": 5}, "trimEnd", "greater than trimStart"),
        ({"prompt": "x" * 2001}, "prompt", "2000"),
        ({"colour": "red"}, "colour", "unknown option"),
    ],
)
def test_bad_values_name_the_field_and_the_allowed_range(payload, field, words):
    with pytest.raises(InvalidOptions) as info:
        ProcessOptions.from_json(payload)
    assert info.value.field == field
    assert field in str(info.value)
    assert words in str(info.value)
    assert info.value.http_status == 400


def test_options_must_be_an_object():
    with pytest.raises(InvalidOptions, match="JSON object"):
        ProcessOptions.from_json([1, 2])


def test_build_from_cli_strings_coerces_and_ignores_unset():
    o = ProcessOptions.build(num_clips="4", trim_start="1.5", mode=None, auto_hook=False)
    assert (o.num_clips, o.trim_start, o.mode, o.auto_hook) == (4, 1.5, "ai", False)
    with pytest.raises(InvalidOptions, match="numClips"):
        ProcessOptions.build(num_clips="12")


def test_options_are_frozen():
    with pytest.raises(ValidationError):
        ProcessOptions().num_clips = 5  # type: ignore[misc]

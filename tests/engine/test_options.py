import json

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
        "captionEmphasis": "auto",
        "captionEmoji": False,
        "captionStyle": None,
        "captionStyleId": None,
        "removeAiVoice": True,
        "autoHook": True,
        "prompt": "",
        "genre": "auto",
        "trimStart": 0.0,
        "trimEnd": None,
        "layout": "auto",
        # beyond the reference: nothing cut, no webhook, unless asked for
        "removeSilence": False,
        "silenceThreshold": 0.6,
        "removeFillers": False,
        "language": "auto",
        "webhookUrl": None,
    }
    assert CLIP_LENGTH_RANGES == {"short": (3, 15), "medium": (20, 45), "long": (45, 90)}


@pytest.mark.parametrize("url", ["", "ftp://example.com/x", "example.com/hook", "https://", "http://a b.com/",
                                 "https://x.example/" + "a" * 2048, 42])
def test_webhook_url_must_be_an_http_url(url):
    with pytest.raises(InvalidOptions) as err:
        ProcessOptions.from_json({"webhookUrl": url})
    assert err.value.field == "webhookUrl" and "http(s) URL" in err.value.message
    assert ProcessOptions.from_json({"webhookUrl": "HTTPS://hooks.example.com/clips?x=1"}).webhook_url


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
        ({"captionEmphasis": "loud"}, "captionEmphasis", '"auto" or "none"'),
        ({"captionEmphasis": True}, "captionEmphasis", '"auto" or "none"'),
        ({"captionEmoji": "yes"}, "captionEmoji", "true or false"),
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


def test_caption_emphasis_and_emoji_round_trip_and_reach_the_cli():
    o = ProcessOptions.from_json({"captionPreset": "beasty", "captionEmphasis": "none", "captionEmoji": True})
    assert (o.caption_emphasis, o.caption_emoji) == ("none", True)
    assert o.to_json()["captionEmphasis"] == "none" and o.to_json()["captionEmoji"] is True  # the manifest's
    with pytest.raises(InvalidOptions) as info:
        ProcessOptions.from_json({"captionEmoji": 1})
    from http_gateway.errors import engine_status  # the gateway answers it 400 {"error": message}

    assert engine_status(info.value) == 400 and info.value.field == "captionEmoji"
    assert info.value.message == "invalid option 'captionEmoji': got 1, expected true or false"
    from clipora.cli import build_parser, options_from_args

    args = build_parser().parse_args(["process", "in.mp4", "-o", "out", "--caption-emphasis", "none",
                                      "--caption-emoji"])
    assert (options_from_args(args).caption_emphasis, options_from_args(args).caption_emoji) == ("none", True)


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


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"numClips": True}, "numClips"),
        ({"numClips": "3"}, "numClips"),
        ({"numClips": 2.0}, "numClips"),
        ({"autoHook": "yes"}, "autoHook"),
        ({"removeAiVoice": 1}, "removeAiVoice"),
        ({"trimStart": float("inf")}, "trimStart"),
        ({"trimStart": float("nan")}, "trimStart"),
        ({"trimEnd": float("inf")}, "trimEnd"),
        ({"trimEnd": float("nan")}, "trimEnd"),
        ({"trimStart": "1.5"}, "trimStart"),
        ({"prompt": 5}, "prompt"),
    ],
)
def test_json_values_are_not_coerced(payload, field):
    with pytest.raises(InvalidOptions) as info:
        ProcessOptions.from_json(payload)
    assert info.value.field == field and field in str(info.value)


def test_json_numbers_that_are_whole_still_work_for_floats():
    o = ProcessOptions.from_json({"trimStart": 2, "trimEnd": 9.5, "numClips": 4, "autoHook": False})
    assert (o.trim_start, o.trim_end, o.num_clips, o.auto_hook) == (2.0, 9.5, 4, False)
    json.dumps(o.to_json(), allow_nan=False)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"num_clips": "1.5"}, "numClips"),
        ({"num_clips": "three"}, "numClips"),
        ({"trim_start": "inf"}, "trimStart"),
        ({"trim_end": "nan"}, "trimEnd"),
        ({"trim_start": "soon"}, "trimStart"),
    ],
)
def test_cli_strings_that_are_not_numbers_are_refused(fields, field):
    with pytest.raises(InvalidOptions) as info:
        ProcessOptions.build(**fields)
    assert info.value.field == field


def test_cli_parser_options_coerce_strings():
    from clipora.cli import build_parser, options_from_args

    args = build_parser().parse_args(["process", "in.mp4", "-o", "out", "--num-clips", "2", "--trim-start", "1",
                                      "--trim-end", "8.5", "--no-auto-hook", "--clip-length", "short"])
    o = options_from_args(args)
    assert (o.num_clips, o.trim_start, o.trim_end, o.auto_hook, o.clip_length) == (2, 1.0, 8.5, False, "short")


@pytest.mark.parametrize("language", ["auto", "en", "es", "de", "ru", "el", "pl", "zh", "jv"])
def test_language_is_auto_or_an_iso_639_1_code_whisper_knows(language):
    assert ProcessOptions.from_json({"language": language}).language == language
    assert ProcessOptions.build(language=language).to_json()["language"] == language


@pytest.mark.parametrize("language", ["EN", "english", "xx", "haw", "yue", "es-ES", "", 1, None])
def test_other_languages_are_refused_naming_the_field(language):
    with pytest.raises(InvalidOptions) as err:
        ProcessOptions.from_json({"language": language})
    assert err.value.field == "language" and "ISO 639-1" in err.value.message


def test_an_english_only_model_refuses_other_languages_but_not_auto_or_english():
    from engine.config import Settings

    assert not Settings.from_env(environ={}).whisper_multilingual  # the default: tiny.en
    assert not Settings.from_env(environ={"CLIPORA_WHISPER_MODEL": "/models/small.en/"}).whisper_multilingual
    assert Settings.from_env(environ={"CLIPORA_WHISPER_MODEL": "base"}).whisper_multilingual
    for ok in ("auto", "en"):
        ProcessOptions(language=ok).check_speech_model(multilingual=False)
    ProcessOptions(language="ru").check_speech_model(multilingual=True)
    with pytest.raises(InvalidOptions) as err:
        ProcessOptions(language="ru").check_speech_model(multilingual=False)
    assert err.value.field == "language" and "CLIPORA_WHISPER_MODEL=base" in err.value.message

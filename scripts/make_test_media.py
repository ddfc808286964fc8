"""Generate Clipora's small committed test media, deterministically, and their ground truth.

Run: python scripts/make_test_media.py [--out tests/media]

Needs the ffmpeg CLI (libx264 + aac), espeak-ng, NumPy, OpenCV and scikit-image (for the
public-domain astronaut photo). Every random choice is seeded and the encoders are run with
bitexact flags and a fixed thread count, so the same tool versions give the same bytes; the
ground truth in truth.json never depends on the encoder at all.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import struct
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
from skimage import data as skdata

FPS = 25
SPEECH_RATE = 22050  # espeak-ng's native rate; sentence times are measured in it
OUT_RATE = 48000  # rate the AAC tracks are encoded at
SENTENCE_GAP = 0.4
PARAGRAPH_GAP = 0.7
VOICE_A = "en-us+m3"
VOICE_B = "en-gb+f3"
WPM = 155

# Head crop of skimage.data.astronaut(): rows 8-228, cols 130-320 (220 x 190 px). The face
# (forehead to chin, cheek to cheek) inside that patch was measured by eye on a grid; a
# detector's box will differ by some pixels, so tests should allow ~15 px.
HEAD_ROWS = (8, 228)
HEAD_COLS = (130, 320)
FACE_IN_PATCH = (46.0, 62.0, 138.0, 174.0)  # x0, y0, x1, y1 in the unscaled patch

X264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "30", "-pix_fmt", "yuv420p",
        "-threads", "2", "-flags:v", "+bitexact"]
AAC = ["-c:a", "aac", "-b:a", "64k", "-ar", str(OUT_RATE), "-ac", "1", "-flags:a", "+bitexact"]
BITEXACT = ["-fflags", "+bitexact", "-map_metadata", "-1"]

GARDENING = [
    ["Welcome back to the garden show.",
     "Today we are growing tomatoes, from a tiny seed all the way to the harvest.",
     "Here is the secret nobody tells you."],
    ["Tomatoes love rich soil with plenty of compost mixed in.",
     "Why do so many tomato plants crack and split in August?",
     "Most of the time, the answer is uneven watering."],
    ["Water deeply twice a week, about five litres for every plant.",
     "A thick layer of mulch keeps the soil cool and moist in summer.",
     "Pick each tomato when it is deep red and just a little soft."],
]
HIRING = [
    ["Now let us talk about something completely different, hiring engineers for a startup.",
     "Why do 90 percent of startups fail at hiring?",
     "They interview for trivia instead of real work."],
    ["A good interview takes two hours and uses a problem from your own product.",
     "Tell every candidate the salary range in the very first call."],
    ["The best candidates get three offers within a single week.",
     "So move fast, and answer every candidate within 48 hours.",
     "What would you rather lose, a week of time or your favourite engineer?"],
]


# --------------------------------------------------------------------------- pictures

# (RGB patch, alpha in 0..1 of shape (h, w, 1), face box x0, y0, x1, y1 inside the patch)
Head = tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]


def head_patch(height: int) -> Head:
    """The astronaut's head scaled to `height` px: RGB patch, feathered alpha, face box."""
    patch = skdata.astronaut()[HEAD_ROWS[0]:HEAD_ROWS[1], HEAD_COLS[0]:HEAD_COLS[1]]
    scale = height / patch.shape[0]
    width = round(patch.shape[1] * scale)
    patch = cv2.resize(patch, (width, height), interpolation=cv2.INTER_AREA)
    # A feathered ellipse hides the photo's rectangular studio backdrop, so the only hard edge
    # a detector or tracker can lock on to is the head itself.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = np.sqrt(((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2)
    alpha = np.clip((1.0 - r) / 0.08, 0.0, 1.0)[..., None]
    fx0, fy0, fx1, fy1 = (v * scale for v in FACE_IN_PATCH)
    return patch, alpha, (fx0, fy0, fx1, fy1)


def background(width: int, height: int, seed: int) -> np.ndarray:
    """A static gradient with a few soft shapes, so frames are not flat but still cheap."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top = np.array([40, 60, 110], np.float32)
    bottom = np.array([30, 120, 110], np.float32)
    img = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()
    for _ in range(7):
        colour = rng.integers(60, 200, 3).tolist()
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), int(rng.integers(height // 12, height // 5)), colour, -1)
        else:
            w, h = int(rng.integers(width // 12, width // 5)), int(rng.integers(20, height // 6))
            cv2.rectangle(img, (cx, cy), (cx + w, cy + h), colour, -1)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def place(head: Head, cx: float, cy: float) -> tuple[int, int, list[float]]:
    """Whole-pixel top-left of the patch that puts the *face* centre at (cx, cy), and the box."""
    fx0, fy0, fx1, fy1 = head[2]
    left = round(cx - (fx0 + fx1) / 2)
    top = round(cy - (fy0 + fy1) / 2)
    return left, top, [left + fx0, top + fy0, left + fx1, top + fy1]


def paste(frame: np.ndarray, head: Head, cx: float, cy: float) -> list[float]:
    """Blend the head into `frame` in place; return the face box as placed."""
    patch, alpha, _ = head
    left, top, box = place(head, cx, cy)
    h, w = patch.shape[:2]
    region = frame[top:top + h, left:left + w].astype(np.float32)
    frame[top:top + h, left:left + w] = (patch * alpha + region * (1 - alpha)).astype(np.uint8)
    return box


def box_centre(box: list[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def r4(v: float) -> float:
    return round(float(v), 4)


# --------------------------------------------------------------------------- sound


def speak(text: str, voice: str, tmp: Path) -> np.ndarray:
    """espeak-ng audio for one sentence with its own leading/trailing silence cut off."""
    wav_path = tmp / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(WPM), "-w", str(wav_path), text],
                   check=True)
    with wave.open(str(wav_path)) as w:
        assert w.getframerate() == SPEECH_RATE and w.getnchannels() == 1
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    loud = np.nonzero(np.abs(x) > 200)[0]
    return x[loud[0]:loud[-1] + 1].copy()


#: language -> (espeak-ng arguments, what it says): speech in other languages that the multilingual
#: Whisper base hears well (tests/stages/speech/test_languages.py, benchmarks.asr_models). Russian needs
#: a word gap (-g 10) and German a small one (-g 4); without them base hears Polish or Yiddish.
LANGUAGE_SPEECH: dict[str, tuple[list[str], str]] = {
    "es": (["-s", "140"], "Buenos días. Me llamo Carlos y vivo en Madrid. Trabajo en una escuela pequeña. "
                          "Hoy hace buen tiempo y vamos a la playa con nuestros amigos."),
    "de": (["-s", "140", "-g", "4"], "Guten Tag. Heute ist das Wetter sehr schön. Wir gehen in den Park und "
                                     "trinken Kaffee. Guten Morgen, ich heiße Anna und arbeite in einer "
                                     "kleinen Schule."),
    "ru": (["-s", "125", "-g", "10"], "Сегодня хорошая погода. Завтра будет дождь, поэтому мы останемся дома. "
                                      "Мы будем пить чай и читать книги."),
}


def speak_language(language: str, folder: Path) -> Path:
    """``LANGUAGE_SPEECH[language]`` spoken by espeak-ng, as ``folder/<language>.wav``."""
    args, text = LANGUAGE_SPEECH[language]
    wav = folder / f"{language}.wav"
    subprocess.run(["espeak-ng", "-v", language, *args, "-w", str(wav), text], check=True, capture_output=True)
    return wav


def speech_track(paragraphs: list[tuple[str, str, list[str]]], tmp: Path,
                 lead: float = 0.5) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Concatenate sentences (topic, voice, texts per paragraph); times are speech extents."""
    pieces = [np.zeros(int(lead * SPEECH_RATE), np.int16)]
    cursor = len(pieces[0])
    truth: list[dict[str, object]] = []
    for p, (topic, voice, sentences) in enumerate(paragraphs):
        if p:
            gap = np.zeros(int((PARAGRAPH_GAP - SENTENCE_GAP) * SPEECH_RATE), np.int16)
            pieces.append(gap)
            cursor += len(gap)
        for text in sentences:
            clip = speak(text, voice, tmp)
            truth.append({"text": text, "voice": voice, "topic": topic, "paragraph": p,
                          "start": r4(cursor / SPEECH_RATE),
                          "end": r4((cursor + len(clip)) / SPEECH_RATE)})
            gap = np.zeros(int(SENTENCE_GAP * SPEECH_RATE), np.int16)
            pieces += [clip, gap]
            cursor += len(clip) + len(gap)
    return np.concatenate(pieces), truth


def fit(x: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    """Pad with silence (or cut) to exactly `seconds`, so audio and video end together."""
    n = round(seconds * rate)
    if len(x) > n and np.any(x[n:]):
        raise ValueError(f"speech runs past {seconds} s; shorten the text")
    return np.pad(x, (0, max(0, n - len(x))))[:n]


def write_wav(path: Path, x: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.astype(np.int16).tobytes())
    return path


# --------------------------------------------------------------------------- encoding


def encode(frames: Iterable[np.ndarray], size: tuple[int, int], out: Path,
           audio: Path | None, fps: int = FPS, vf: list[str] | None = None,
           extra: list[str] | None = None, audio_codec: list[str] = AAC) -> None:
    """Pipe RGB frames into ffmpeg (libx264, optional audio track from a wav, AAC by default)."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{size[0]}x{size[1]}", "-framerate", str(fps), "-i", "pipe:0"]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "0:v", "-map", "1:a", *audio_codec]
    cmd += [*(vf or []), *X264, *BITEXACT, *(extra or []), str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed for {out.name}")


def moving_frames(bg: np.ndarray, head: Head, track: list[list[float]]) -> Iterator[np.ndarray]:
    for _, cx, cy in track:
        frame = bg.copy()
        paste(frame, head, cx, cy)
        yield frame


def probe_info(size: tuple[int, int], duration: float, fps: float | None,
               audio: bool, rotation: int | None = None,
               audio_codec: str = "aac") -> dict[str, object]:
    """What ffprobe must report for a file; tests/test_media_truth.py checks it."""
    video = {"codec": "h264", "width": size[0], "height": size[1], "fps": fps,
             "pix_fmt": "yuv420p", "rotation": rotation}
    aud = {"codec": audio_codec, "sample_rate": OUT_RATE, "channels": 1} if audio else None
    return {"duration": r4(duration), "video": video, "audio": aud}


# --------------------------------------------------------------------------- the files


def speech_topics(out: Path, tmp: Path) -> dict[str, object]:
    paragraphs = []
    for i, para in enumerate(GARDENING + HIRING):
        topic = "gardening" if i < len(GARDENING) else "hiring"
        paragraphs.append((topic, VOICE_A if i % 2 == 0 else VOICE_B, para))
    samples, sentences = speech_track(paragraphs, tmp)
    n = math.ceil((len(samples) / SPEECH_RATE + 0.8) * FPS)
    duration = n / FPS
    wav = write_wav(tmp / "speech.wav", fit(samples, duration, SPEECH_RATE), SPEECH_RATE)
    head = head_patch(220)
    amp, period, cy = 320.0, 20.0, 360.0
    track = [[r4(i / FPS), 640.0 + amp * math.sin(2 * math.pi * i / FPS / period), cy]
             for i in range(n)]
    encode(moving_frames(background(1280, 720, 1), head, track), (1280, 720), out, wav)
    topics = []
    for name in ("gardening", "hiring"):
        ss = [s for s in sentences if s["topic"] == name]
        topics.append({"topic": name, "start": ss[0]["start"], "end": ss[-1]["end"]})
    return {**probe_info((1280, 720), duration, FPS, True), "sentences": sentences,
            "topics": topics, "face": face_truth(head, track,
            f"cx = 640 + {amp} * sin(2*pi*t/{period}) (rounded to whole-pixel placement), "
            f"cy = {cy}")}


def face_truth(head: Head, track: list[list[float]], formula: str) -> dict[str, object]:
    """Per-frame face centre as actually placed (whole pixels), plus the box size."""
    placed = [[t, *(r4(v) for v in box_centre(place(head, cx, cy)[2]))] for t, cx, cy in track]
    fx0, fy0, fx1, fy1 = head[2]
    return {"formula": formula, "box_size": [r4(fx1 - fx0), r4(fy1 - fy0)],
            "head_patch_size": [head[0].shape[1], head[0].shape[0]], "track": placed}


def short_speech(texts: list[str], voice: str, seconds: float, tmp: Path,
                 name: str) -> tuple[Path, list[dict[str, object]]]:
    samples, sentences = speech_track([("talk", voice, texts)], tmp)
    wav = write_wav(tmp / f"{name}.wav", fit(samples, seconds, SPEECH_RATE), SPEECH_RATE)
    return wav, sentences


def face_moving(out: Path, tmp: Path) -> dict[str, object]:
    seconds, n = 12.0, 12 * FPS
    wav, sentences = short_speech(
        ["The camera stays still while I walk from one side of the room to the other.",
         "Now I am walking back again."], VOICE_A, seconds, tmp, "moving")
    head = head_patch(220)
    # Centre of the left third to centre of the right third and back, easing at both ends.
    track = [[r4(i / FPS), 640.0 - 1280 / 3 * math.cos(2 * math.pi * i / n), 360.0]
             for i in range(n)]
    encode(moving_frames(background(1280, 720, 2), head, track), (1280, 720), out, wav)
    return {**probe_info((1280, 720), seconds, FPS, True), "sentences": sentences,
            "face": face_truth(head, track, "cx = 640 - 426.667 * cos(2*pi*t/12), cy = 360")}


def face_static(out: Path, tmp: Path) -> dict[str, object]:
    seconds, n = 10.0, 10 * FPS
    wav, sentences = short_speech(
        ["Hello, and thank you for watching this short interview.",
         "I sit a little to the right of the frame, like many people do on camera."],
        VOICE_B, seconds, tmp, "static")
    rng = np.random.default_rng(3)
    jitter = rng.integers(-2, 3, size=(n, 2))
    track = [[r4(i / FPS), 900.0 + jitter[i, 0], 340.0 + jitter[i, 1]] for i in range(n)]
    head = head_patch(220)
    encode(moving_frames(background(1280, 720, 3), head, track), (1280, 720), out, wav)
    return {**probe_info((1280, 720), seconds, FPS, True), "sentences": sentences,
            "face": face_truth(head, track, "cx = 900 + j, cy = 340 + j, j uniform in -2..2")}


def two_faces(out: Path, tmp: Path) -> dict[str, object]:
    seconds, n = 10.0, 10 * FPS
    wav, sentences = short_speech(
        ["Two people share this picture, one on the left and one on the right.",
         "The person on the left is larger and closer to the camera."],
        VOICE_A, seconds, tmp, "two")
    frame = background(1280, 720, 4)
    big = head_patch(240)
    left_box = paste(frame, big, 330.0, 370.0)
    patch, alpha, (fx0, fy0, fx1, fy1) = head_patch(170)
    # Mirrored and greyscale, so the two heads are visibly different people to a viewer.
    mirrored = np.ascontiguousarray(patch[:, ::-1])
    grey = cv2.cvtColor(cv2.cvtColor(mirrored, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    w = patch.shape[1]
    small: Head = (grey, alpha[:, ::-1], (w - fx1, fy0, w - fx0, fy1))
    right_box = paste(frame, small, 960.0, 330.0)
    encode((frame for _ in range(n)), (1280, 720), out, wav)
    return {**probe_info((1280, 720), seconds, FPS, True), "sentences": sentences,
            "faces": [{"name": "left", "description": "astronaut, colour, 240 px head",
                       "box": [r4(v) for v in left_box]},
                      {"name": "right", "description": "astronaut mirrored, greyscale, 170 px",
                       "box": [r4(v) for v in right_box]}]}


def no_audio(out: Path, tmp: Path) -> dict[str, object]:
    seconds, n = 8.0, 8 * FPS
    head = head_patch(165)
    track = [[r4(i / FPS), 480.0 - 240.0 * math.cos(2 * math.pi * i / n), 270.0]
             for i in range(n)]
    encode(moving_frames(background(960, 540, 5), head, track), (960, 540), out, None)
    return {**probe_info((960, 540), seconds, FPS, False),
            "face": face_truth(head, track, "cx = 480 - 240 * cos(2*pi*t/8), cy = 270")}


def rotated_phone(out: Path, tmp: Path) -> dict[str, object]:
    seconds, n = 8.0, 8 * FPS
    wav, sentences = short_speech(
        ["I recorded this on my phone, held upright.",
         "The red bar should be at the top of the picture."], VOICE_B, seconds, tmp, "phone")
    portrait = background(720, 1280, 6)
    portrait[0:90] = (230, 20, 20)
    head = head_patch(330)
    box = paste(portrait, head, 360.0, 560.0)
    # Phones store the sensor's landscape frame plus a display matrix that turns it upright.
    encode((np.rot90(portrait, k=1) for _ in range(n)), (1280, 720), out, wav)
    set_display_matrix(out, (0, 0x10000, 0, -0x10000, 0, 0, 720 << 16, 0, 0x40000000))
    info = probe_info((1280, 720), seconds, FPS, True, rotation=-90)
    return {**info, "sentences": sentences, "display_size": [720, 1280],
            "display_matrix": "0 1 0 / -1 0 0 / 720 0 1 (as iPhones write)",
            "red_bar": "top 90 rows of the upright 720x1280 picture",
            "face_box_upright": [r4(v) for v in box],
            # rot90(k=1) sends upright (x, y) to coded (y, 720 - x)
            "face_box_coded": [r4(v) for v in (box[1], 720 - box[2], box[3], 720 - box[0])]}


def set_display_matrix(path: Path, matrix: tuple[int, ...]) -> None:
    """Write the tkhd matrix of the first track (the video) in place.

    Patched by hand rather than with ffmpeg's "rotate" tag because that tag's handling differs
    between ffmpeg versions (5.1 honours it only when stream-copying, 6+ ignores it). The matrix
    (0 1 0 / -1 0 0 / 720 0 1) is what an iPhone writes for portrait video: ffprobe reports
    rotation -90 and players turn the picture 90 degrees clockwise.
    """
    buf = bytearray(path.read_bytes())

    def child(start: int, end: int, kind: bytes) -> tuple[int, int]:
        while start + 8 <= end:
            size, typ = struct.unpack(">I4s", buf[start:start + 8])
            if typ == kind:
                return start + 8, start + size
            start += size
        raise RuntimeError(f"no {kind!r} box in {path.name}")

    moov = child(0, len(buf), b"moov")
    tkhd_start, _ = child(*child(*moov, b"trak"), b"tkhd")
    version = buf[tkhd_start]
    at = tkhd_start + 4 + (20 if version == 0 else 32) + 16
    buf[at:at + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(buf))


SYNC_TIMES = [1.0, 3.0, 5.4, 7.0]  # on the 25 fps grid and on the 30/12 fps VFR grid
SYNC_SECONDS = 8.0
BEEP_SECONDS = 0.06


def sync_audio(tmp: Path) -> Path:
    rng = np.random.default_rng(7)
    n = int(SYNC_SECONDS * OUT_RATE)
    x = rng.normal(0.0, 0.001, n)  # about -60 dBFS, so silence is not digital zero
    k = int(BEEP_SECONDS * OUT_RATE)
    ramp = np.minimum(1.0, np.minimum(np.arange(k), np.arange(k)[::-1]) / (0.001 * OUT_RATE))
    beep = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(k) / OUT_RATE) * ramp
    for t in SYNC_TIMES:
        s = round(t * OUT_RATE)
        x[s:s + k] += beep
    return write_wav(tmp / "sync.wav", np.round(x * 32767), OUT_RATE)


def flash_frames(w: int, h: int, fps: int) -> Iterator[np.ndarray]:
    black = np.zeros((h, w, 3), np.uint8)
    white = np.full((h, w, 3), 255, np.uint8)
    flashes = {round(t * fps) for t in SYNC_TIMES}
    for i in range(int(SYNC_SECONDS * fps)):
        yield white if i in flashes else black


def sync_cfr(out: Path, tmp: Path) -> dict[str, object]:
    encode(flash_frames(640, 360, FPS), (640, 360), out, sync_audio(tmp))
    return {**probe_info((640, 360), SYNC_SECONDS, FPS, True), "flash_times": SYNC_TIMES,
            "beep_times": SYNC_TIMES, "beep": "1 kHz sine, 60 ms, -6 dBFS",
            "flash_frames": [round(t * FPS) for t in SYNC_TIMES]}


def sync_vfr(out: Path, tmp: Path) -> dict[str, object]:
    # Rendered on a 60 fps grid, then 2 s at 30 fps, 2 s at 12 fps, repeated: n counts the
    # 60 fps input frames, and every flash sits on a frame both rates keep.
    # FLAC, not AAC: Matroska cannot store AAC's negative priming timestamps, so ffmpeg would
    # shift every stream by 1024 samples (21 ms) and the flash/beep times would not be exact.
    select = "select='if(lt(mod(n\\,240)\\,120)\\,not(mod(n\\,2))\\,not(mod(n\\,5)))'"
    encode(flash_frames(640, 360, 60), (640, 360), out, sync_audio(tmp), fps=60,
           vf=["-vf", select, "-fps_mode", "passthrough"],
           audio_codec=["-c:a", "flac", "-ar", str(OUT_RATE), "-ac", "1", "-flags:a", "+bitexact"])
    frames = 2 * (60 + 24)
    return {**probe_info((640, 360), SYNC_SECONDS, None, True, audio_codec="flac"),
            "flash_times": SYNC_TIMES, "beep_times": SYNC_TIMES,
            "beep": "1 kHz sine, 60 ms, -6 dBFS",
            "frame_count": frames,
            "segments": [{"start": 0.0, "end": 2.0, "fps": 30}, {"start": 2.0, "end": 4.0,
                          "fps": 12}, {"start": 4.0, "end": 6.0, "fps": 30},
                         {"start": 6.0, "end": 8.0, "fps": 12}]}


def bad_inputs(out_dir: Path, tmp: Path) -> dict[str, dict[str, object]]:
    (out_dir / "not_a_video.mp4").write_text(
        "This is a plain text file with an .mp4 name. It is not a video.\n")
    samples, sentences = speech_track([("talk", VOICE_A, ["This file has sound but no picture."])],
                                      tmp, lead=0.3)
    wav = write_wav(tmp / "m4a.wav", fit(samples, 3.0, SPEECH_RATE), SPEECH_RATE)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *AAC, *BITEXACT,
                    str(out_dir / "audio_only.m4a")], check=True)
    # The first 2 KB of a valid file: ftyp and the start of mdat, but no moov (it is at the end).
    (out_dir / "truncated.mp4").write_bytes((out_dir / "face_static.mp4").read_bytes()[:2048])
    aac = {"codec": "aac", "sample_rate": OUT_RATE, "channels": 1}
    return {
        "not_a_video.mp4": {"invalid": True, "why": "a text file with a video name"},
        "audio_only.m4a": {"duration": 3.0, "video": None, "audio": aac,
                           "sentences": sentences},
        "truncated.mp4": {"invalid": True, "why": "first 2048 bytes of face_static.mp4"},
    }


BUILDERS = {
    "speech_topics.mp4": speech_topics,
    "face_moving.mp4": face_moving,
    "face_static.mp4": face_static,
    "two_faces.mp4": two_faces,
    "no_audio.mp4": no_audio,
    "rotated_phone.mp4": rotated_phone,
    "sync_cfr.mp4": sync_cfr,
    "sync_vfr.mkv": sync_vfr,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/media"))
    parser.add_argument("--only", nargs="*", help="build only these files (truth is rewritten"
                        " for them only)")
    args = parser.parse_args()
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_path = out_dir / "truth.json"
    files: dict[str, object] = {}
    if args.only and truth_path.exists():
        files = json.loads(truth_path.read_text())["files"]
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name, build in BUILDERS.items():
            if args.only and name not in args.only:
                continue
            print(f"making {name}", flush=True)
            files[name] = build(out_dir / name, tmp)
        if not args.only or set(args.only) & {"bad", "truncated.mp4"}:
            files.update(bad_inputs(out_dir, tmp))
    truth = {"generator": "scripts/make_test_media.py", "fps": FPS,
             "face_box_note": "face boxes are forehead-to-chin, cheek-to-cheek, measured by eye "
             "on the astronaut photo; allow about 15 px", "files": files}
    text = json.dumps(truth, indent=1)
    # Keep each short list of numbers (a track point, a box) on one line, so the file reads.
    text = re.sub(r"\[\s+(-?[\d.]+(?:,\s+-?[\d.]+)*)\s+\]",
                  lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    truth_path.write_text(text + "\n")


if __name__ == "__main__":
    main()

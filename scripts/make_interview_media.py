"""Generate a small two-person interview (audio, or video with two talking faces) and its truth.

Run: python scripts/make_interview_media.py OUT.mp4 [--seconds-per-answer N]

The "host" is espeak-ng with one fixed voice, pitch and speed, asking questions: the
flat, uniform delivery of a synthetic interviewer. The "guest" answers in a clearly
different voice whose pitch and speed change from sentence to sentence, as a person's
do. In the video the host sits on the left and the guest on the right (the public-domain
astronaut portrait, the guest mirrored and greyscale); each face's mouth opens with the
loudness of its own speaker, so the talking face is the one whose mouth moves.

The tests generate these files into temporary folders; nothing here is committed media.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scripts.make_test_media import (
    FPS,
    SPEECH_RATE,
    Head,
    background,
    encode,
    head_patch,
    paste,
    place,
    write_wav,
)

HOST_VOICE = ("en-us+m3", 50, 165)  # voice, pitch (0-99), words per minute: fixed
GUEST_VOICE = "en-gb+f4"
GUEST_PROSODY = ((62, 142), (38, 171), (75, 150), (47, 135), (68, 160), (33, 148), (57, 175))
TURN_GAP = 0.6  # silence between the host's and the guest's turns
SENTENCE_GAP = 0.35

#: (question, answer sentences): question and answer vocabularies are disjoint on purpose,
#: so a transcript shows at once whose words survived a splice.
DIALOGUE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("So what made you start this company?",
     ("Honestly, I was tired of cooking dinner every single night.",
      "My sister and I built a small kitchen robot in our garage.")),
    ("How did your first customers find you?",
     ("A local bakery ordered ten machines after seeing our video.",
      "Then every restaurant in town started calling us.")),
    ("What would you tell someone starting today?",
     ("Build something small, and sell it before it is finished.",
      "Money arrives much later than you expect.")),
)


@dataclass(frozen=True)
class Turn:
    speaker: str  # "host" | "guest"
    start: float
    end: float
    text: str


def speak(text: str, voice: str, pitch: int, wpm: int, tmp: Path) -> np.ndarray:
    wav_path = tmp / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(wpm), "-w", str(wav_path), text],
                   check=True, capture_output=True)
    with wave.open(str(wav_path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    loud = np.nonzero(np.abs(x) > 200)[0]
    return x[loud[0]:loud[-1] + 1].astype(np.float32)


def interview_audio(tmp: Path, dialogue=DIALOGUE, lead: float = 0.5,
                    tail: float = 0.8) -> tuple[np.ndarray, list[Turn]]:
    """Samples at SPEECH_RATE (int16 range floats) and the true turns (speech extents)."""
    rate = SPEECH_RATE
    pieces = [np.zeros(int(lead * rate), np.float32)]
    cursor = len(pieces[0])
    turns: list[Turn] = []
    k = 0
    for question, answer in dialogue:
        voice, pitch, wpm = HOST_VOICE
        q = speak(question, voice, pitch, wpm, tmp)
        turns.append(Turn("host", cursor / rate, (cursor + len(q)) / rate, question))
        gap = np.zeros(int(TURN_GAP * rate), np.float32)
        pieces += [q, gap]
        cursor += len(q) + len(gap)
        for i, sentence in enumerate(answer):
            pitch, wpm = GUEST_PROSODY[k % len(GUEST_PROSODY)]
            k += 1
            a = speak(sentence, GUEST_VOICE, pitch, wpm, tmp)
            start = cursor
            gap = np.zeros(int((SENTENCE_GAP if i < len(answer) - 1 else TURN_GAP) * rate), np.float32)
            pieces += [a, gap]
            cursor += len(a) + len(gap)
            turns.append(Turn("guest", start / rate, (start + len(a)) / rate, sentence))
    pieces.append(np.zeros(int(tail * rate), np.float32))
    return np.concatenate(pieces), turns


def envelope(samples: np.ndarray, rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Per video frame loudness in [0, 1] (RMS over the frame's span, normalised)."""
    hop = rate / fps
    out = np.zeros(n_frames, np.float32)
    for i in range(n_frames):
        seg = samples[int(i * hop):int((i + 1) * hop)]
        out[i] = float(np.sqrt(np.mean(seg * seg))) if len(seg) else 0.0
    peak = float(np.percentile(out[out > 0], 95)) if np.any(out > 0) else 1.0
    return np.clip(out / max(peak, 1e-6), 0.0, 1.0)


def mouth_centre(head: Head, cx: float, cy: float) -> tuple[float, float, float, float]:
    """Mouth centre x, y and the face box width, height for a face placed at (cx, cy)."""
    _, _, box = place(head, cx, cy)
    w, h = box[2] - box[0], box[3] - box[1]
    return (box[0] + box[2]) / 2, box[1] + 0.76 * h, w, h


def draw_mouth(frame: np.ndarray, head: Head, cx: float, cy: float, opening: float) -> None:
    mx, my, w, h = mouth_centre(head, cx, cy)
    if opening > 0.05:
        axes = (max(2, int(w * 0.17)), max(1, int(h * 0.09 * opening)))
        cv2.ellipse(frame, (int(mx), int(my)), axes, 0, 0, 360, (60, 20, 25), -1, cv2.LINE_AA)


def two_heads(height: int) -> tuple[Head, Head]:
    host = head_patch(height)
    patch, alpha, (fx0, fy0, fx1, fy1) = head_patch(height)
    w = patch.shape[1]
    mirrored = np.ascontiguousarray(patch[:, ::-1])
    grey = cv2.cvtColor(cv2.cvtColor(mirrored, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    guest: Head = (grey, np.ascontiguousarray(alpha[:, ::-1]), (w - fx1, fy0, w - fx0, fy1))
    return host, guest


def interview_video(out: Path, tmp: Path, size: tuple[int, int] = (960, 540),
                    dialogue=DIALOGUE) -> dict[str, object]:
    """An MP4 of the interview: host face on the left, guest on the right; returns truth."""
    samples, turns = interview_audio(tmp, dialogue)
    duration = int(np.ceil(len(samples) / SPEECH_RATE * FPS)) / FPS
    n = round(duration * FPS)
    samples = np.pad(samples, (0, max(0, round(duration * SPEECH_RATE) - len(samples))))
    wav = write_wav(tmp / "interview.wav", np.clip(samples, -32768, 32767), SPEECH_RATE)
    host_only = samples.copy()
    guest_only = samples.copy()
    for t in turns:
        a, b = int(t.start * SPEECH_RATE), int(t.end * SPEECH_RATE) + 1
        (guest_only if t.speaker == "host" else host_only)[a:b] = 0
    env = {"host": envelope(host_only, SPEECH_RATE, FPS, n), "guest": envelope(guest_only, SPEECH_RATE, FPS, n)}
    w, h = size
    host_head, guest_head = two_heads(int(h * 0.42))
    places = {"host": (w * 0.25, h * 0.5), "guest": (w * 0.75, h * 0.5)}
    bg = background(w, h, 11)
    boxes: dict[str, list[float]] = {}
    for name, head in (("host", host_head), ("guest", guest_head)):
        boxes[name] = paste(bg, head, *places[name])

    def frames():
        for i in range(n):
            frame = bg.copy()
            draw_mouth(frame, host_head, *places["host"], float(env["host"][i]))
            draw_mouth(frame, guest_head, *places["guest"], float(env["guest"][i]))
            yield frame

    encode(frames(), size, out, wav)
    return {"duration": duration, "size": list(size), "turns": [t.__dict__ for t in turns],
            "faces": {k: [round(v, 2) for v in b] for k, b in boxes.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth = interview_video(args.out, Path(tmp))
    args.out.with_suffix(".json").write_text(json.dumps(truth, indent=1))
    print(json.dumps(truth, indent=1))


if __name__ == "__main__":
    main()

"""Generate a multi-camera podcast (a wide shot and close-ups, an editor cutting between them) and its truth.

Run: python scripts/make_multicam_media.py OUT.mp4 [--people 3] [--real ../shared/media]

``generated`` (:func:`make`): 1280x720, 25 fps, two (or three) of the project's generated people
(scripts/make_interview_media.py: the host is the astronaut in colour, the guest mirrored in
greyscale; a third, the astronaut in false colour, with ``people=3``), each with an espeak-ng voice
of their own, taking turns. Three (four) cameras: a wide shot with everyone at the table and a
close-up of each person, on other backdrops. Every mouth opens with the loudness of its own voice
only, so a listener's mouth is shut. The edit (:data:`EDIT`) cuts between the angles on and off
the turn boundaries: close-ups of whoever talks, reaction shots (a close-up of a listener for a
moment, the speaker off screen), and wide shots during a turn and across a change of speaker.

``real`` (:func:`make_real`): the real talking heads of ../shared/media with their own voices
(talking_head_1 = "A", a man in a suit; talking_head_2 = "B", a man in front of a map), taking
four turns (A 3 s, B 2.5 s, A 3.1 s, B 2.5 s of their own recordings, in order). Cameras: a
composed wide shot (the two recordings side by side on one backdrop: the speaker's plays, the
listener's holds its frame, a listener who does not talk), a close-up of A (his recording zoomed
in) and one of B, cut on and off the turn boundaries with a reaction shot (:func:`_real_edit`).

The truth (both): per frame who is speaking (the owner of the turn around it, None between turns)
and every face's box as placed; per shot its kind (``wide``/``close``), first frame and the people
it shows; the turns; the cut frames. :func:`judge` scores a crop path against it (the tests and
benchmarks/framing_quality.py use it). The tests generate these files into temporary folders;
nothing here is committed media.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tempfile
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scripts.make_interview_media import draw_mouth, envelope, speak, two_heads
from scripts.make_test_media import FPS, SPEECH_RATE, Head, background, encode, paste, place, write_wav

SIZE = (1280, 720)
#: x264 speed for these test-time files (the committed media's encoder settings, a faster preset)
FAST = ["-preset", "ultrafast"]
#: person -> (espeak-ng voice, pitch, words per minute)
VOICES = {"host": ("en-us+m3", 50, 160), "guest": ("en-gb+f4", 62, 150), "third": ("en-gb-scotland+m7", 40, 165)}
#: (speaker, sentences) in order; the third person's turns are only spoken with ``people=3``
DIALOGUE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host", ("Welcome back to the show.", "Today my guest builds little robots for home kitchens.")),
    ("guest", ("Thanks for having me.", "We started in a garage with one old oven and far too much coffee.")),
    ("third", ("I was the neighbour who tasted everything.",)),
    ("host", ("So what was the hardest part?",)),
    ("guest", ("Teaching the robot to crack an egg without breaking the yolk.", "It took four hundred eggs.")),
    ("host", ("Four hundred eggs, that is a lot of omelettes.",)),
    ("guest", ("We ate omelettes for a month.", "Now the robot makes them better than I do.")),
)
TURN_GAP = 0.5
SENTENCE_GAP = 0.3
LEAD, TAIL = 0.4, 0.6

#: the edit per number of people: (camera, where the shot starts). A camera is "wide" or
#: "close:<person>"; the start is (turn index, "start" | "end" | "mid", offset s), turns counted as
#: spoken: "start"/"end" of a turn with offset 0 is a cut on the turn boundary (the middle of the
#: pause), anything else a cut inside a turn.
EDIT: dict[int, tuple[tuple[str, tuple[int, str, float]], ...]] = {
    # turns: 0 host, 1 guest, 2 host, 3 guest, 4 host, 5 guest
    2: (("wide", (0, "start", -LEAD)),              # the table, the host opens
        ("close:host", (0, "start", 1.4)),          # off the boundary: the host's close-up mid-turn
        ("close:guest", (1, "start", 0.0)),         # on the boundary: the guest answers
        ("close:host", (1, "mid", -0.8)),           # a reaction shot: the host listens (speaker off screen)
        ("close:guest", (1, "mid", 0.4)),           # back to the guest
        ("wide", (1, "end", -1.2)),                 # wide during the guest's turn, across the change to the host
        ("close:guest", (3, "start", 1.5)),         # off the boundary: two changes of speaker in that wide shot
        ("close:host", (4, "start", 0.0)),          # on the boundary
        ("wide", (4, "end", -1.0)),                 # wide: the host finishes, the guest takes over in the shot
        ("close:guest", (5, "mid", 0.0))),          # the guest's close-up mid-turn
    # turns: 0 host, 1 guest, 2 third, 3 host, 4 guest, 5 host, 6 guest
    3: (("wide", (0, "start", -LEAD)),
        ("close:host", (0, "start", 1.4)),
        ("close:guest", (1, "start", 0.0)),
        ("close:third", (1, "mid", -0.8)),          # a reaction shot: the third person listens
        ("close:guest", (1, "mid", 0.4)),
        ("wide", (1, "end", -1.2)),                 # wide across the change from the guest to the third
        ("close:host", (3, "start", 1.2)),          # the wide shot saw the guest, the third, then the host
        ("close:guest", (4, "start", 0.3)),
        ("wide", (4, "end", -1.0)),
        ("close:guest", (6, "mid", 0.0))),
}


def third_head(height: int) -> Head:
    """The astronaut in false colour (channels swapped): a third face that is clearly someone else."""
    from scripts.make_test_media import head_patch

    patch, alpha, box = head_patch(height)
    return np.ascontiguousarray(patch[:, :, ::-1]), alpha, box


def _heads(height: int, people: Sequence[str]) -> dict[str, Head]:
    host, guest = two_heads(height)
    heads = {"host": host, "guest": guest}
    if "third" in people:
        heads["third"] = third_head(height)
    return heads


def _audio(tmp: Path, people: Sequence[str]) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, np.ndarray]]:
    """The podcast's samples at SPEECH_RATE, its turns (speech extents), and each person's own track."""
    rate = SPEECH_RATE
    pieces = [np.zeros(int(LEAD * rate), np.float32)]
    owner = [""]
    turns: list[dict[str, Any]] = []
    cursor = len(pieces[0])
    for speaker, sentences in DIALOGUE:
        if speaker not in people:
            continue
        voice, pitch, wpm = VOICES[speaker]
        first = cursor
        spans = []
        for i, text in enumerate(sentences):
            x = speak(text, voice, pitch, wpm, tmp)
            spans.append([round(cursor / rate, 4), round((cursor + len(x)) / rate, 4), text])
            gap = np.zeros(int((SENTENCE_GAP if i < len(sentences) - 1 else TURN_GAP) * rate), np.float32)
            pieces += [x, gap]
            owner += [speaker, ""]
            cursor += len(x) + len(gap)
        turns.append({"speaker": speaker, "start": round(first / rate, 4), "end": spans[-1][1], "sentences": spans})
    pieces.append(np.zeros(int(TAIL * rate), np.float32))
    owner.append("")
    samples = np.concatenate(pieces)
    own = {p: np.concatenate([x if o == p else np.zeros_like(x) for x, o in zip(pieces, owner, strict=True)])
           for p in people}
    return samples, turns, own


def _anchor(turns: list[dict[str, Any]], at: tuple[int, str, float]) -> float:
    k, where, off = at
    turn = turns[k]
    if where == "mid":
        return (turn["start"] + turn["end"]) / 2 + off
    if where == "start":
        # a cut on the boundary sits in the middle of the pause before the turn
        base = (turns[k - 1]["end"] + turn["start"]) / 2 if k > 0 and off == 0.0 else turn["start"]
        return max(0.0, base + off)
    base = (turn["end"] + turns[k + 1]["start"]) / 2 if k + 1 < len(turns) and off == 0.0 else turn["end"]
    return base + off


def speaking_per_frame(turns: Sequence[dict[str, Any]], n: int, fps: float) -> list[str | None]:
    """Who speaks on each frame: the owner of the turn around the frame's middle, None between turns."""
    out: list[str | None] = [None] * n
    for turn in turns:
        a, b = int(math.ceil(turn["start"] * fps - 0.5)), int(math.floor(turn["end"] * fps - 0.5))
        for i in range(max(0, a), min(n, b + 1)):
            out[i] = turn["speaker"]
    return out


def make(out: Path, tmp: Path, people: int = 2) -> dict[str, Any]:
    """The generated podcast into ``out`` (MP4 with its mixed voices); returns its truth."""
    names = ["host", "guest", "third"][:people]
    samples, turns, own = _audio(tmp, names)
    n = int(math.ceil(len(samples) / SPEECH_RATE * FPS))
    duration = n / FPS
    samples = np.pad(samples, (0, round(duration * SPEECH_RATE) - len(samples)))
    wav = write_wav(tmp / "podcast.wav", np.clip(samples, -32768, 32767), SPEECH_RATE)
    env = {p: envelope(np.pad(x, (0, max(0, len(samples) - len(x)))), SPEECH_RATE, FPS, n) for p, x in own.items()}
    w, h = SIZE
    wide_x = {2: (0.3, 0.7), 3: (0.2, 0.5, 0.8)}[people]
    close_x = {"host": 0.42, "guest": 0.58, "third": 0.5}
    cams: dict[str, dict[str, Any]] = {
        "wide": {"bg": background(w, h, 11), "heads": _heads(int(h * 0.4), names),
                 "at": {p: (wide_x[i] * w, 0.5 * h) for i, p in enumerate(names)}}}
    for i, p in enumerate(names):
        cams[f"close:{p}"] = {"bg": background(w, h, 3 + 2 * i), "heads": {p: _heads(int(h * 0.85), names)[p]},
                              "at": {p: (close_x[p] * w, 0.52 * h)}}
    edit = EDIT[people]
    cuts = sorted({min(n - 1, max(0, round(_anchor(turns, at) * FPS))): cam for cam, at in edit}.items())
    firsts = [f for f, _ in cuts]
    if firsts[0] != 0:
        raise ValueError("the edit must start at frame 0")
    if min(np.diff(firsts)) < FPS:  # every shot lasts >= 1 s (the cut detector merges < 0.5 s)
        raise ValueError(f"a shot shorter than 1 s in the edit: {firsts}")
    speaking = speaking_per_frame(turns, n, FPS)
    shots: list[dict[str, Any]] = []
    for k, (first, cam) in enumerate(cuts):
        last = (cuts[k + 1][0] if k + 1 < len(cuts) else n) - 1
        on = sorted(cams[cam]["at"])
        talking = {s for s in speaking[first:last + 1] if s}
        shots.append({"first": first, "last": last, "start": first / FPS, "end": (last + 1) / FPS,
                      "camera": cam, "kind": "wide" if cam == "wide" else "close", "people": on,
                      "reaction": cam != "wide" and bool(talking) and not (talking & set(on))})
    boxes: list[dict[str, list[float]]] = []
    pasted: dict[tuple[str, str, int, int], tuple[int, int, np.ndarray]] = {}

    def put(frame: np.ndarray, camera: str, p: str, cx: float, cy: float) -> list[float]:
        # a head over its camera's static backdrop, blended once per whole-pixel position
        head = cams[camera]["heads"][p]
        left, top, box = place(head, cx, cy)
        key = (camera, p, left, top)
        if key not in pasted:
            region = cams[camera]["bg"].copy()
            paste(region, head, cx, cy)
            hh, ww = head[0].shape[:2]
            pasted[key] = (left, top, region[top:top + hh, left:left + ww].copy())
        x0, y0, img = pasted[key]
        frame[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img
        return box

    def frames() -> Iterator[np.ndarray]:
        for shot in shots:
            cam = cams[shot["camera"]]
            for i in range(shot["first"], shot["last"] + 1):
                frame = cam["bg"].copy()
                placed: dict[str, list[float]] = {}
                for j, (p, (cx, cy)) in enumerate(sorted(cam["at"].items())):
                    # people sway a little: real motion inside a shot, inside the tripod's safe zone
                    sway = round((14.0 if shot["kind"] == "close" else 6.0) * math.sin(2 * math.pi * i / 60 + j))
                    placed[p] = [round(v, 1) for v in put(frame, shot["camera"], p, cx + sway, cy + 0.3 * sway)]
                    draw_mouth(frame, cam["heads"][p], cx + sway, cy + 0.3 * sway, float(env[p][i]))
                boxes.append(placed)
                yield frame

    encode(frames(), SIZE, out, wav, extra=FAST)
    return {"source": "generated", "people": names, "size": list(SIZE), "fps": FPS, "frames": n,
            "duration": duration, "turns": turns, "shots": shots, "cut_frames": [s["first"] for s in shots[1:]],
            "speaking": speaking, "boxes": boxes}


# -- the real variant ----------------------------------------------------------------------------

#: (file, face centre x, y, face width, height in its own pixels: CenterFace's median over every 5th
#: frame of the recording; the centre moves 13 px (A) and 37 px (B) over the recording)
REAL_PEOPLE = {"A": ("talking_head_1.mp4", 387.0, 230.0, 206.0, 282.0),
               "B": ("talking_head_2.mp4", 398.0, 424.0, 309.0, 389.0)}
#: the turns: (speaker, their recording's seconds from, to), played in order, back to back
REAL_TURNS = (("A", 0.0, 3.0), ("B", 0.0, 2.5), ("A", 3.0, 6.08), ("B", 2.5, 5.0))
#: the composed wide: each recording scaled to WIDE_TILE px square at these left edges, top WIDE_TOP
WIDE_TILE, WIDE_TOP = 600, 60
WIDE_LEFT = {"A": 20, "B": 660}
#: the close-ups: the recording's square (x0, y0, side) in its 720 px scaling, shown 720 px tall at ``left``
CLOSE = {"A": ((160, 10, 470), 380), "B": ((40, 60, 660), 200)}


def _real_edit(n_turn: list[int], n: int) -> list[tuple[str, int]]:
    """Cut frames from the turn boundaries (frames where each turn starts)."""
    b1, b2, b3 = n_turn[1], n_turn[2], n_turn[3]
    return [("wide", 0),              # both at the table, A talks (B holds still)
            ("close:A", 50),          # A's close-up, mid-turn
            ("close:B", b1),          # on the boundary: B answers
            ("close:A", b1 + 37),     # a reaction shot: A listens, B talks off screen
            ("wide", b2),             # on the boundary: A talks in the wide shot
            ("close:A", b2 + 28),     # A's close-up, mid-turn
            ("wide", b3 - 24),        # wide: A finishes, B takes over in the shot
            ("close:B", b3 + 36)]     # B's close-up, mid-turn


def _decode(path: Path, side: int) -> Iterator[np.ndarray]:
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"fps={FPS},scale={side}:{side}",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    size = side * side * 3
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        yield np.frombuffer(buf, np.uint8).reshape(side, side, 3)
    proc.wait()


def _audio_of(path: Path, tmp: Path, a: float, b: float) -> np.ndarray:
    wav = tmp / "real_piece.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-ss", f"{a}", "-to", f"{b}", "-ac", "1",
                    "-ar", str(SPEECH_RATE), str(wav)], check=True)
    with wave.open(str(wav)) as f:
        return np.frombuffer(f.readframes(f.getnframes()), np.int16).copy()


def make_real(out: Path, tmp: Path, shared: Path) -> dict[str, Any]:
    """The real two-camera cut of ../shared/media's talking heads into ``out``; returns its truth."""
    side = 720
    frames_of = {p: list(_decode(shared / who[0], side)) for p, who in REAL_PEOPLE.items()}
    pieces, turns, starts = [], [], []
    cursor = 0
    for p, a, b in REAL_TURNS:
        x = _audio_of(shared / REAL_PEOPLE[p][0], tmp, a, b)
        n_x = round((b - a) * FPS)
        x = np.pad(x, (0, max(0, round(n_x / FPS * SPEECH_RATE) - len(x))))[:round(n_x / FPS * SPEECH_RATE)]
        starts.append(cursor)
        turns.append({"speaker": p, "start": cursor / FPS, "end": (cursor + n_x) / FPS, "source": [a, b]})
        pieces.append(x)
        cursor += n_x
    n = cursor
    wav = write_wav(tmp / "real.wav", np.concatenate(pieces), SPEECH_RATE)
    edit = _real_edit(starts, n)
    # per frame: each person's recording frame (the speaker's plays on, a listener holds his next one)
    pos = {p: 0 for p in REAL_PEOPLE}
    src_frame: list[dict[str, int]] = []
    for k, (p, a, _) in enumerate(REAL_TURNS):
        pos[p] = round(a * FPS)
        for _ in range(starts[k], (starts[k + 1] if k + 1 < len(starts) else n)):
            src_frame.append(dict(pos))
            pos[p] = min(pos[p] + 1, len(frames_of[p]) - 1)
    speaking = speaking_per_frame(turns, n, FPS)
    shots: list[dict[str, Any]] = []
    for k, (cam, first) in enumerate(edit):
        last = (edit[k + 1][1] if k + 1 < len(edit) else n) - 1
        on = ["A", "B"] if cam == "wide" else [cam.split(":")[1]]
        talking = {s for s in speaking[first:last + 1] if s}
        shots.append({"first": first, "last": last, "start": first / FPS, "end": (last + 1) / FPS, "camera": cam,
                      "kind": "wide" if cam == "wide" else "close", "people": on,
                      "reaction": cam != "wide" and bool(talking) and not (talking & set(on))})
    backdrop = np.full((SIZE[1], SIZE[0], 3), (48, 56, 64), np.uint8)
    boxes: list[dict[str, list[float]]] = []

    def face_box(p: str, scale: float, left: float, top: float) -> list[float]:
        _, fx, fy, fw, fh = REAL_PEOPLE[p]
        s = side / {"A": 700.0, "B": 844.0}[p] * scale  # recording px -> placed px
        cx, cy = left + fx * s, top + fy * s
        return [round(v, 1) for v in (cx - fw * s / 2, cy - fh * s / 2, cx + fw * s / 2, cy + fh * s / 2)]

    def frames() -> Iterator[np.ndarray]:
        for shot in shots:
            for i in range(shot["first"], shot["last"] + 1):
                frame = backdrop.copy()
                placed: dict[str, list[float]] = {}
                if shot["camera"] == "wide":
                    for p in ("A", "B"):
                        tile = cv2.resize(frames_of[p][src_frame[i][p]], (WIDE_TILE, WIDE_TILE),
                                          interpolation=cv2.INTER_AREA)
                        frame[WIDE_TOP:WIDE_TOP + WIDE_TILE, WIDE_LEFT[p]:WIDE_LEFT[p] + WIDE_TILE] = tile
                        placed[p] = face_box(p, WIDE_TILE / side, WIDE_LEFT[p], WIDE_TOP)
                else:
                    p = shot["people"][0]
                    (x0, y0, sq), left = CLOSE[p]
                    img = frames_of[p][src_frame[i][p]][y0:y0 + sq, x0:x0 + sq]
                    frame[:, left:left + 720] = cv2.resize(img, (720, 720), interpolation=cv2.INTER_LINEAR)
                    placed[p] = face_box(p, 720 / sq, left - x0 * 720 / sq, -y0 * 720 / sq)
                boxes.append(placed)
                yield frame

    encode(frames(), SIZE, out, wav, extra=FAST)
    return {"source": "real", "people": ["A", "B"], "size": list(SIZE), "fps": FPS, "frames": n,
            "duration": n / FPS, "turns": turns, "shots": shots, "cut_frames": [s["first"] for s in shots[1:]],
            "speaking": speaking, "boxes": boxes}


# -- judging a crop path -------------------------------------------------------------------------


def words_from_truth(truth: dict[str, Any]) -> list[tuple[float, float, str, str]]:
    """(start, end, text, speaker) words over the truth's speech: each sentence's words spread evenly
    over its extent (the generated podcast), or two words a second over a real turn."""
    out = []
    for turn in truth["turns"]:
        spans = turn.get("sentences") or [[turn["start"], turn["end"], " ".join(["word"] * max(
            1, int(2 * (turn["end"] - turn["start"]))))]]
        for a, b, text in spans:
            ws = text.split()
            step = (b - a) / len(ws)
            out += [(a + j * step, a + (j + 0.85) * step, w, turn["speaker"]) for j, w in enumerate(ws)]
    return out


def _moves(x: np.ndarray, a: int, b: int, eps: float = 0.5) -> list[tuple[int, int]]:
    """The camera's moves inside frames [a, b]: runs of frames whose position changes, (first, last)."""
    moving = np.abs(np.diff(x[a:b + 1])) > eps  # moving[j]: frame a + j -> a + j + 1
    runs, j = [], 0
    while j < len(moving):
        if moving[j]:
            k = j
            while k + 1 < len(moving) and moving[k + 1]:
                k += 1
            runs.append((a + j, a + k + 1))
            j = k + 1
        else:
            j += 1
    return runs


def judge(truth: dict[str, Any], path: Any, crop_w: int, margin: float = 0.1) -> dict[str, Any]:
    """How a 9:16 crop path (``path.x`` per source frame from 0, ``path.shots`` with layouts) frames the truth.

    - ``speaker_shown``: of the frames where someone speaks and the shot shows them, the share whose
      crop holds the speaker's face centre (inside the middle ``1 - 2 * margin`` of its width; a split
      frame counts either panel; a fit frame, the whole frame with everyone small, does not count:
      ``fit_frames`` says how many there were);
    - ``pans_across_cuts``: cuts where the camera (either panel's) moves on the frame before or after the cut;
    - ``min_hold_s``: the shortest still time between two moves inside one shot (None without two);
    - ``first_move_s``: the shortest time from a cut to the shot's first move (None without moves).
    """
    x = np.asarray(path.x, dtype=np.float64)
    x2 = np.asarray(path.x2, dtype=np.float64) if path.x2 else None
    fps = truth["fps"]
    shown, counted, fit = 0, 0, 0
    misses: list[int] = []
    for i, spk in enumerate(truth["speaking"][:len(x)]):
        if spk is None or spk not in truth["boxes"][i]:
            continue
        counted += 1
        b = truth["boxes"][i][spk]
        cx = (b[0] + b[2]) / 2
        sh = path.shot_at(i / fps) if path.shots else None
        if sh is not None and sh.layout == "fit":
            fit += 1  # the whole frame, everyone small: nobody is followed
            misses.append(i)
            continue
        lefts = [x[i]] + ([x2[i]] if x2 is not None and sh is not None and sh.layout == "split" else [])
        width = sh.panel[0] if sh is not None and sh.layout == "split" else crop_w
        ok = any(left + margin * width <= cx <= left + (1 - margin) * width for left in lefts)
        shown += ok
        if not ok:
            misses.append(i)
    cuts = truth["cut_frames"]
    pans = sum(int(any(abs(v[c - 1] - v[c - 2]) > 0.5 or abs(v[c + 1] - v[c]) > 0.5
                       for v in ([x] if x2 is None else [x, x2])))
               for c in cuts if 2 <= c < len(x) - 1)
    holds, first = [], []
    for s in truth["shots"]:
        runs = _moves(x, s["first"], min(s["last"], len(x) - 1))
        if runs:
            first.append((runs[0][0] + 1 - s["first"]) / fps)
        holds += [(b0 - a1) / fps for (_, a1), (b0, _) in zip(runs, runs[1:], strict=False)]
    return {"speaker_frames": counted, "speaker_shown": shown / counted if counted else None,
            "fit_frames": fit,
            "missed_frames": misses, "pans_across_cuts": pans, "cuts": len(cuts),
            "min_hold_s": min(holds) if holds else None, "moves_in_shots": len(holds) + len(first),
            "first_move_s": min(first) if first else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--people", type=int, default=2, choices=(2, 3))
    ap.add_argument("--real", type=Path, help="../shared/media: make the real variant from its talking heads")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        truth = make_real(args.out, Path(tmp), args.real) if args.real else make(args.out, Path(tmp), args.people)
    args.out.with_suffix(".json").write_text(json.dumps(truth))
    print(json.dumps({k: v for k, v in truth.items() if k not in ("speaking", "boxes")}, indent=1))


if __name__ == "__main__":
    main()

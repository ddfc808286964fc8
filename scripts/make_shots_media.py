"""Generate an edited 16:9 video with hard cuts (two face shots, a text card, a cut back) and its truth.

Run: python scripts/make_shots_media.py OUT.mp4

Shots (25 fps, 1280x720, no audio):

- A  frames   0- 79: the astronaut on the left (face centre x 330), bobbing a little (real motion);
- B  frames  80-154: a second person (mirrored, greyscale) on the right (x 950), other background;
- C  frames 155-229: a full-width text card: a plain light background, a headline across the
  whole width, a red marker bar on the left edge and a blue one on the right edge, no face;
- A' frames 230-299: back to the first angle (x 330).

The tests generate this file into a temporary folder; nothing here is committed media.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from scripts.make_interview_media import two_heads
from scripts.make_test_media import FPS, background, box_centre, encode, paste, place

SIZE = (1280, 720)
#: (first frame, face centre x or None for the card, background seed)
SHOTS = ((0, 330.0, 1), (80, 950.0, 4), (155, None, 0), (230, 330.0, 1))
FRAMES = 300
#: the card's edge markers: (x0, x1) source columns and RGB colour
LEFT_MARK = ((0, 40), (220, 30, 30))
RIGHT_MARK = ((1240, 1280), (30, 60, 220))
CARD_RGB = (236, 232, 220)


def card(w: int, h: int) -> np.ndarray:
    """A newspaper-style text card: headline and rules across the full width, edge markers."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = CARD_RGB
    for (x0, x1), colour in (LEFT_MARK, RIGHT_MARK):
        img[:, x0:x1] = colour
    cv2.putText(img, "MARKETS RALLY AS RATES FALL", (70, 300), cv2.FONT_HERSHEY_DUPLEX, 2.1, (20, 20, 20), 4,
                cv2.LINE_AA)
    cv2.putText(img, "Shares rose in every sector on Tuesday after the bank cut rates", (70, 400),
                cv2.FONT_HERSHEY_SIMPLEX, 1.05, (40, 40, 40), 2, cv2.LINE_AA)
    cv2.line(img, (70, 200), (w - 70, 200), (20, 20, 20), 3)
    cv2.line(img, (70, 460), (w - 70, 460), (20, 20, 20), 3)
    return img


def frames_and_truth() -> tuple[Iterator[np.ndarray], dict[str, object]]:
    w, h = SIZE
    host, guest = two_heads(int(h * 0.42))
    heads = {330.0: host, 950.0: guest}
    bgs = {seed: background(w, h, seed) for _, _, seed in SHOTS if seed}
    the_card = card(w, h)
    shots: list[dict[str, object]] = []
    for k, (first, cx, _) in enumerate(SHOTS):
        last = (SHOTS[k + 1][0] if k + 1 < len(SHOTS) else FRAMES) - 1
        entry: dict[str, object] = {"first": first, "last": last, "start": first / FPS, "end": (last + 1) / FPS,
                                    "face": cx is not None}
        if cx is not None:
            entry["box"] = [round(v, 2) for v in place(heads[cx], cx, h * 0.5)[2]]
        shots.append(entry)

    def frames() -> Iterator[np.ndarray]:
        for i in range(FRAMES):
            k = max(j for j, (first, _, _) in enumerate(SHOTS) if first <= i)
            _, cx, seed = SHOTS[k]
            if cx is None:
                yield the_card
                continue
            frame = bgs[seed].copy()
            bob = 12.0 * math.sin(2 * math.pi * i / 40)  # the head sways: motion inside a shot
            paste(frame, heads[cx], cx + bob, h * 0.5 + 0.5 * bob)
            yield frame

    truth = {"size": list(SIZE), "fps": FPS, "frames": FRAMES, "duration": FRAMES / FPS,
             "cut_frames": [first for first, _, _ in SHOTS[1:]], "shots": shots,
             "left_mark": list(LEFT_MARK[0]), "right_mark": list(RIGHT_MARK[0]),
             "mark_rgb": [list(LEFT_MARK[1]), list(RIGHT_MARK[1])],
             "face_centres": [box_centre(s["box"])[0] if s.get("box") else None for s in shots]}  # type: ignore[arg-type]
    return frames(), truth


#: ``real_cuts``: real talking heads (../shared/media) cut together: 2 s of talking_head_1, 2 s of
#: talking_head_2 (both centred), 2 s of talking_head_1 zoomed in (another angle of the same man on
#: the same backdrop, 200 px further left), 2 s of talking_head_1 again (240 px right of centre),
#: 25 fps on a 1280x720 canvas. The cut frames as ffmpeg's
#: fps filter lays them out (the 30 fps source gives 49 frames in its first 2 s); ffmpeg's own
#: scene score (select='gt(scene,0.3)') finds the first two.
REAL_CUT_FRAMES = (49, 99, 149)


def real_cuts(out: Path, shared: Path) -> Path:
    def pad(x: int) -> str:
        return f"pad=1280:720:{x}:0:color=0x303840"

    graph = (
        "[0:v]fps=25,scale=720:720,setsar=1,split=3[a0][a1][a2];"
        f"[a0]trim=start=0:end=2,setpts=PTS-STARTPTS,{pad(280)}[s1];"
        f"[1:v]fps=25,scale=720:720,setsar=1,trim=start=0.5:end=2.5,setpts=PTS-STARTPTS,{pad(280)}[s2];"
        f"[a1]trim=start=2:end=4,setpts=PTS-STARTPTS,crop=420:420:140:60,scale=720:720,{pad(80)}[s3];"
        f"[a2]trim=start=4:end=6,setpts=PTS-STARTPTS,{pad(520)}[s4];"
        "[s1][s2][s3][s4]concat=n=4:v=1:a=0,format=yuv420p[v]"
    )
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(shared / "talking_head_1.mp4"),
                    "-i", str(shared / "talking_head_2.mp4"), "-filter_complex", graph, "-map", "[v]",
                    "-c:v", "libx264", "-crf", "23", "-r", "25", "-fflags", "+bitexact", str(out)], check=True)
    return out


def make(out: Path) -> dict[str, object]:
    frames, truth = frames_and_truth()
    encode(frames, SIZE, out, None)
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    print(json.dumps(make(args.out), indent=1))


if __name__ == "__main__":
    main()

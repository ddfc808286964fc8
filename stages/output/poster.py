"""poster: clip_NN.jpg, the frame that best represents a clip (a clear face, early on)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.errors import InvalidMedia
from engine.stage import Resources, Stage, StageContext
from engine.storage import atomic_path
from engine.types import CropPath, FaceSample, MediaInfo, OutputGeometry
from kernels.resize import crop_resize, fit_over_blur, fit_rect
from stages.media import frame_at

JPEG_QUALITY = 90


@dataclass(frozen=True)
class PosterRequest:
    media: MediaInfo
    start: float
    end: float
    geometry: OutputGeometry
    crop_path: CropPath
    faces: tuple[FaceSample, ...]
    out_path: Path


class PosterStage(Stage[PosterRequest, Path]):
    name = "poster"
    resources = Resources(cpus=1.0)

    def process(self, inputs: PosterRequest, ctx: StageContext) -> Path:
        t = choose_poster_time(inputs.faces, inputs.start, inputs.end)
        rgb = frame_at(inputs.media, t)
        if rgb is None:
            raise InvalidMedia(f"no frame could be decoded near {t:.2f} s for the poster")
        k = int(round((t - inputs.start) * inputs.crop_path.fps))
        image = frame_to_output(rgb, inputs.geometry, inputs.crop_path, k, t)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise InvalidMedia("the poster frame could not be encoded")
        with atomic_path(inputs.out_path) as tmp:
            tmp.write_bytes(data.tobytes())
        ctx.progress(1.0, f"poster at {t:.2f} s")
        return inputs.out_path


def choose_poster_time(faces: tuple[FaceSample, ...], start: float, end: float) -> float:
    """The sample with the biggest, surest face, preferring the first half of the clip."""
    dur = max(end - start, 1e-6)
    best_t, best = start + dur / 3, 0.0
    for s in faces:
        if not (start <= s.t < end) or not s.faces:
            continue
        face = max(s.faces, key=lambda f: f.score * f.area)
        weight = face.score * np.sqrt(face.area) * (1.0 - 0.5 * (s.t - start) / dur)
        if weight > best:
            best_t, best = s.t, weight
    return min(max(best_t, start), max(start, end - 1e-3))


def frame_to_output(rgb: np.ndarray, geo: OutputGeometry, path: CropPath, k: int,
                    t: float | None = None) -> np.ndarray:
    """One upright RGB source frame framed exactly as the render frames output frame ``k``
    (``t``: the frame's source time, which says its shot's layout when the path has shots)."""
    shot = path.shot_at(t) if t is not None else None
    if geo.mode == "pad" or (geo.mode == "crop" and shot is not None and shot.layout == "fit"):
        return fit_over_blur(rgb, geo.out_w, geo.out_h, fit_rect(geo.src_w, geo.src_h, geo.out_w, geo.out_h))
    if geo.mode == "crop" and shot is not None and shot.layout == "split":
        geo = OutputGeometry(geo.src_w, geo.src_h, geo.out_w, geo.out_h, "split", *shot.panel)
    if geo.mode == "split":
        ph = geo.out_h // 2
        panels = []
        for x, y in (path.at_frame(k), path.at_frame2(k)):
            x, y = int(round(x / 2)) * 2, int(round(y / 2)) * 2
            panels.append(crop_resize(rgb, x, y, geo.crop_w, geo.crop_h, geo.out_w, ph))
        image = np.concatenate(panels, axis=0)
        image[ph - 2 : ph + 2] = 16
        return image
    x, y = path.at_frame(k) if geo.mode == "crop" else (0.0, 0.0)
    x, y = int(round(x / 2)) * 2, int(round(y / 2)) * 2
    return crop_resize(rgb, x, y, geo.crop_w, geo.crop_h, geo.out_w, geo.out_h)

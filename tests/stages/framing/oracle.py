"""What the tests check framing against: where a face lands in the output frame."""

from __future__ import annotations

from engine.types import CropPath, OutputGeometry


def face_center_in_output(
    path: CropPath, geometry: OutputGeometry, t: float, face_cx: float
) -> float:
    """Where a face centred at source x ``face_cx`` lands in the output frame at time ``t``."""
    if geometry.mode == "resize":
        return face_cx * geometry.out_w / geometry.src_w
    if geometry.mode == "pad":
        scale = min(geometry.out_w / geometry.src_w, geometry.out_h / geometry.src_h)
        return (geometry.out_w - geometry.src_w * scale) / 2.0 + face_cx * scale
    x, _ = path.at_frame(int(round((t - path.start) * path.fps)))
    return (face_cx - x) * geometry.out_w / geometry.crop_w

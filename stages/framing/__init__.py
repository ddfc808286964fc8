"""Framing: faces, face tracks, the tripod camera, active-speaker framing, output geometry."""

from __future__ import annotations

from stages.framing.face_detector import (
    CenterFaceDetector,
    SizePlan,
    centerface_model_path,
    decode_outputs,
    default_centerface_source,
    detection_size,
    nms,
)
from stages.framing.face_runners import (
    FaceRunner,
    OnnxRuntimeRunner,
    TorchRunner,
)
from stages.framing.face_select import make_face_detector
from stages.framing.face_tensorrt import TensorRTRunner
from stages.framing.faces import (
    FaceDetectRequest,
    FaceDetectStage,
    FaceSurveyRequest,
    FaceSurveyStage,
)
from stages.framing.geometry import (
    fit_shots,
    is_split_aspect,
    output_geometry,
    render_geometry,
)
from stages.framing.onnx_torch import onnx_to_torch
from stages.framing.reframe import (
    ReframeRequest,
    ReframeStage,
    plan_crop_path,
)
from stages.framing.reuse import FaceReuseRequest, FaceReuseStage
from stages.framing.speakers import (
    SpeakerParams,
    subject_schedule,
)
from stages.framing.tracks import (
    choose_subject,
    track_faces,
)
from stages.framing.tripod import (
    DEFAULT_TRIPOD,
    max_speed_px_per_frame,
)

__all__ = [
    "CenterFaceDetector",
    "SizePlan",
    "DEFAULT_TRIPOD",
    "FaceDetectRequest",
    "FaceDetectStage",
    "FaceReuseRequest",
    "FaceReuseStage",
    "FaceRunner",
    "FaceSurveyRequest",
    "FaceSurveyStage",
    "OnnxRuntimeRunner",
    "ReframeRequest",
    "ReframeStage",
    "SpeakerParams",
    "TensorRTRunner",
    "TorchRunner",
    "centerface_model_path",
    "choose_subject",
    "decode_outputs",
    "default_centerface_source",
    "detection_size",
    "fit_shots",
    "is_split_aspect",
    "make_face_detector",
    "max_speed_px_per_frame",
    "nms",
    "onnx_to_torch",
    "output_geometry",
    "plan_crop_path",
    "render_geometry",
    "subject_schedule",
    "track_faces",
]

"""Planning: the analysis becomes the job's JobPlan (one ClipPlan per clip)."""

from __future__ import annotations

from stages.planning.edit import EditPlanRequest, EditPlanStage, snapped_window
from stages.planning.plan import (
    ClipPlanStage,
    PlanRequest,
    speaker_to_cut,
    trim_span,
    without_speaker,
)

__all__ = [
    "ClipPlanStage",
    "EditPlanRequest",
    "EditPlanStage",
    "PlanRequest",
    "snapped_window",
    "speaker_to_cut",
    "trim_span",
    "without_speaker",
]

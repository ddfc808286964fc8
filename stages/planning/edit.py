"""edit_plan: a re-render's plan - one clip of a finished job, with the clip edit applied.

The edit (engine.edits.ClipEdit, already merged with the clip's earlier edits) is applied to the
clip as the job's analysis planned it, from the job's cached plan, host decision and diarization:
no transcription, diarization or moment search runs again.

- the window: ``start``/``end`` (source seconds) snapped so no word is cut in half (an edge inside
  a word moves out to that word's edge, never into the next word), within the job's trimmed span;
- corrected words replace the text of the transcript's words by index, their timing kept, so the
  captions, the .srt/.vtt and the manifest's transcript all show the correction;
- the splice (removeAiVoice's host cut, removeSilence, removeFillers) is planned anew for the
  window with the edit's options, by the same ``plan_edits`` a job uses;
- the output geometry follows the edit's aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.edits import MAX_EDIT_S, MIN_EDIT_S, ClipEdit
from engine.errors import InvalidOptions
from engine.options import ProcessOptions
from engine.stage import Resources, Stage, StageContext
from engine.types import Diarization, HostDecision, JobPlan, Transcript, Word
from stages.framing import output_geometry
from stages.planning.plan import clip_plan, edits_for, layout_notes, speaker_to_cut, splices
from stages.speech import plan_edits

#: silence kept before the first word / after the last one when an edge is snapped out of a word
LEAD_S = 0.05
TAIL_S = 0.12


def corrected(transcript: Transcript, fixes: dict[int, str]) -> Transcript:
    """The transcript with words ``fixes`` names (by index) showing their new text; InvalidOptions for an
    index past its end."""
    if not fixes:
        return transcript
    n = len(transcript.words)
    bad = sorted(i for i in fixes if i >= n)
    if bad:
        raise InvalidOptions(f"invalid edit 'words': word {bad[0]} does not exist (the transcript has {n} words, "
                             f"0-{n - 1})", field="words")
    words = tuple(replace(w, text=fixes[i]) if i in fixes else w for i, w in enumerate(transcript.words))
    return replace(transcript, words=words)


def snapped_window(start: float, end: float, words: tuple[Word, ...], span: tuple[float, float]
                   ) -> tuple[float, float]:
    """[start, end) moved out of any word it would cut, kept within ``span``."""
    lo, hi = span
    start, end = max(lo, start), min(hi, end)
    for k, w in enumerate(words):
        if w.start < start < w.end:  # the edge cuts this word: start before it
            prev_end = words[k - 1].end if k else lo
            start = max(lo, prev_end, w.start - LEAD_S)
        if w.start < end < w.end:
            next_start = words[k + 1].start if k + 1 < len(words) else hi
            end = min(hi, next_start, w.end + TAIL_S)
    return start, end


def check_window(start: float, end: float, span: tuple[float, float]) -> None:
    lo, hi = span
    if start >= hi or end <= lo:
        raise InvalidOptions(f"invalid edit: the window {start:g}-{end:g} s lies outside the job's source span "
                             f"{lo:g}-{hi:g} s", field="start")
    if end - start < MIN_EDIT_S - 1e-6:
        raise InvalidOptions(f"invalid edit: the clip would last {end - start:.2f} s; at least {MIN_EDIT_S:g} s",
                             field="end")
    if end - start > MAX_EDIT_S + 0.5:
        raise InvalidOptions(f"invalid edit: the clip would last {end - start:.1f} s; at most {MAX_EDIT_S:g} s",
                             field="end")


@dataclass(frozen=True)
class EditPlanRequest:
    plan: JobPlan  # the finished job's
    index: int  # 1-based
    edit: ClipEdit  # accumulated
    options: ProcessOptions  # the job's, with the edit's rendering fields
    host: HostDecision
    diarization: Diarization


class EditPlanStage(Stage[EditPlanRequest, JobPlan]):
    name = "edit_plan"
    resources = Resources(cpus=1.0)

    def process(self, inputs: EditPlanRequest, ctx: StageContext) -> JobPlan:
        plan, edit, options = inputs.plan, inputs.edit, inputs.options
        original = next((c for c in plan.clips if c.index == inputs.index), None)
        if original is None:
            raise InvalidOptions(f"the job has no clip {inputs.index}", field="index")
        transcript = corrected(plan.transcript, edit.corrections())
        start = original.moment.start if edit.start is None else edit.start
        end = original.moment.end if edit.end is None else edit.end
        check_window(start, end, plan.span)
        start, end = snapped_window(start, end, transcript.words, plan.span)
        check_window(start, end, plan.span)
        moment = replace(original.moment, start=start, end=end)
        cut = speaker_to_cut(options, inputs.host)
        if splices(options, cut):
            segments = plan_edits(start, end, transcript.words, plan.fps, **edits_for(options, cut))  # type: ignore[arg-type]
            if not segments:
                raise InvalidOptions("invalid edit: nothing would be left of the clip once the host's turns, "
                                     "pauses and fillers are cut", field="start")
        else:
            segments = ()
        clip = clip_plan(inputs.index, moment, tuple(segments), transcript, plan.fps, splices(options, cut),
                         inputs.diarization.available)
        geometry = output_geometry(plan.media.width, plan.media.height, options.aspect_ratio)
        ctx.progress(1.0, f"clip {inputs.index}: {start:.2f}-{end:.2f} s planned")
        return replace(plan, options=options.to_json(), geometry=geometry, clips=(clip,), transcript=transcript,
                       selection=replace(plan.selection, moments=(moment,)),
                       notes=layout_notes(options, geometry))

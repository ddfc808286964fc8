"""plan: the analysis phase's last step - the chosen moments become the job's JobPlan.

Per clip: the window, the kept source segments once an interview host's turns, fillers
(``removeFillers``) and long pauses (``removeSilence``) are cut out (one splice, ``plan_edits``;
with fillers or pauses cut, a window is extended over the words after it until the spliced clip
is as long as its clipLength range asks), the caption words on the clip's timeline, and the speaker-labelled words
that active-speaker framing follows; per job: the output geometry and frame rate, the notes,
and the interview analysis the manifest reports. Everything a worker needs to make one clip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.errors import InvalidOptions
from engine.options import ProcessOptions
from engine.stage import Resources, Stage, StageContext
from engine.types import (
    ClipPlan,
    Diarization,
    HostDecision,
    JobPlan,
    MediaInfo,
    Moment,
    MomentSelection,
    OutputGeometry,
    Transcript,
)
from stages.framing import is_split_aspect, output_geometry
from stages.output import output_rate, speaker_analysis
from stages.speech import MIN_CONFIDENCE, Segment, clip_words, plan_edits, spliced_duration


def trim_span(media: MediaInfo, options: ProcessOptions) -> tuple[float, float]:
    """The source span a job works in (trimStart/trimEnd), or InvalidOptions naming the field."""
    start = options.trim_start
    end = media.duration if options.trim_end is None else min(options.trim_end, media.duration)
    if start >= media.duration:
        raise InvalidOptions(
            f"trimStart ({start:g} s) is at or past the end of the source ({media.duration:.2f} s)",
            field="trimStart",
        )
    if end - start < 0.5:
        raise InvalidOptions(
            f"the trimmed span {start:g}-{end:g} s is too short (at least 0.5 s needed)", field="trimEnd"
        )
    return start, end


def speaker_to_cut(options: ProcessOptions, host: HostDecision) -> str | None:
    """The speaker whose turns are spliced out: an interview's host found with enough confidence."""
    if options.remove_ai_voice and host.interview and host.confidence >= MIN_CONFIDENCE:
        return host.host
    return None


def without_speaker(transcript: Transcript, speaker: str | None) -> Transcript:
    """The words moments are chosen from: everyone's, or everyone's but the cut speaker's."""
    if speaker is None:
        return transcript
    return replace(transcript, words=tuple(w for w in transcript.words if w.speaker != speaker))


def edits_for(options: ProcessOptions, cut_speaker: str | None) -> dict[str, object]:
    """plan_edits' keyword arguments for these options."""
    return {"host": cut_speaker, "silence_s": options.silence_threshold if options.remove_silence else None,
            "fillers": options.remove_fillers}


def splices(options: ProcessOptions, cut_speaker: str | None) -> bool:
    return cut_speaker is not None or options.remove_silence or options.remove_fillers


def splice_plans(selection: MomentSelection, transcript: Transcript, cut_speaker: str | None, fps: float,
                 options: ProcessOptions, span: tuple[float, float] | None = None
                 ) -> tuple[MomentSelection, list[tuple[Segment, ...]]]:
    """Each moment's kept source segments once ``cut_speaker``'s turns, fillers and long pauses are
    cut out (as the options ask).

    A moment left with nothing (only the host spoke in it) is dropped. With fillers or pauses cut
    (mode ai), a clip the cut makes shorter than its clipLength range is extended over the words
    that follow it, up to the next clip or the end of ``span``, ending on a sentence end where one
    is in range; one that still falls short is kept, and the notes say so.
    """
    if not splices(options, cut_speaker):
        return selection, [plan_edits(m.start, m.end, (), fps) for m in selection.moments]
    lo, hi = options.clip_length_range
    edits = edits_for(options, cut_speaker)
    extend = options.mode == "ai" and (options.remove_silence or options.remove_fillers)
    starts = sorted(m.start for m in selection.moments)
    limit_end = span[1] if span else transcript.audio_duration
    kept: list[Moment] = []
    plans: list[tuple[Segment, ...]] = []
    notes = list(selection.notes)
    dropped = 0
    for m in selection.moments:
        segments = plan_edits(m.start, m.end, transcript.words, fps, **edits)  # type: ignore[arg-type]
        if not segments:
            dropped += 1
            continue
        if extend and spliced_duration(segments, fps) < lo - 1.0 / fps:
            nxt = min((t for t in starts if t > m.start), default=limit_end)
            m, segments = _extended(m, segments, transcript, fps, edits, lo, hi, min(nxt, limit_end))
        length = spliced_duration(segments, fps)
        if length < lo - 1.0 / fps:
            what = "the host's turns are" if cut_speaker is not None and not extend else "pauses and fillers are"
            notes.append(f"clip {len(kept) + 1} lasts {length:.1f} s once {what} cut, "
                         f"under the {options.clip_length} range's {lo:g} s")
        kept.append(m)
        plans.append(segments)
    if dropped:
        notes.append(f"{dropped} chosen moment{'s' if dropped > 1 else ''} held only the host's speech "
                     "and {} dropped".format("were" if dropped > 1 else "was"))
    return replace(selection, moments=tuple(kept), notes=tuple(notes)), plans


def _extended(m: Moment, segments: tuple[Segment, ...], transcript: Transcript, fps: float,
              edits: dict[str, object], lo: float, hi: float, limit: float) -> tuple[Moment, tuple[Segment, ...]]:
    """The moment extended word by word (never past ``limit``) until its spliced length reaches ``lo``,
    then on to the next sentence end while it stays within ``hi``."""
    after = [w for w in transcript.words if w.start >= m.end - 1e-6 and w.end <= limit]
    best = (m, segments)
    reached = False
    for w in after:
        end = min(limit, w.end + 0.2)
        cand = plan_edits(m.start, end, transcript.words, fps, **edits)  # type: ignore[arg-type]
        length = spliced_duration(cand, fps)
        if length > hi:
            break
        if length >= lo:
            if not reached:
                best, reached = (replace(m, end=end), cand), True
            if w.text.endswith((".", "?", "!")):
                best = (replace(m, end=end), cand)
                break
        else:
            best = (replace(m, end=end), cand)
    return best


def clip_plan(index: int, m: Moment, segments: tuple[Segment, ...], transcript: Transcript, fps: float,
              splicing: bool, diarized: bool) -> ClipPlan:
    """Clip ``index`` of moment ``m`` with its kept ``segments``: spliced (captions on the clip's own
    timeline) when the splice removed something, else the plain window."""
    spliced = splicing and (
        len(segments) > 1 or abs(spliced_duration(segments, fps) - (m.end - m.start)) > 1.0 / fps)
    window = transcript.words_between(m.start, m.end)
    if spliced:
        words, c0, c1 = tuple(clip_words(transcript.words, segments, fps)), 0.0, spliced_duration(segments, fps)
    else:
        segments, words, c0, c1 = (), tuple(window), m.start, m.end
    return ClipPlan(index, m, tuple(segments), words, c0, c1, tuple(window) if diarized else ())


def layout_notes(options: ProcessOptions, geometry: OutputGeometry) -> tuple[str, ...]:
    if options.layout == "split" and not is_split_aspect(geometry):
        why = "is for 9:16 outputs" if options.aspect_ratio != "9:16" else "needs a source wider than 9:16"
        return (f"layout split {why}; clips follow the active speaker instead",)
    return ()


@dataclass(frozen=True)
class PlanRequest:
    job_id: str
    media: MediaInfo
    options: ProcessOptions
    span: tuple[float, float]
    selection: MomentSelection
    transcript: Transcript  # speaker-labelled
    diarization: Diarization
    host: HostDecision


class ClipPlanStage(Stage[PlanRequest, JobPlan]):
    name = "plan"
    resources = Resources(cpus=1.0)

    def process(self, inputs: PlanRequest, ctx: StageContext) -> JobPlan:
        options, media, transcript = inputs.options, inputs.media, inputs.transcript
        cut = speaker_to_cut(options, inputs.host)
        geometry = output_geometry(media.width, media.height, options.aspect_ratio)
        fps = float(output_rate(media))
        selection, plans = splice_plans(inputs.selection, transcript, cut, fps, options, inputs.span)
        clips = [clip_plan(i, m, segments, transcript, fps, splices(options, cut), inputs.diarization.available)
                 for i, (m, segments) in enumerate(zip(selection.moments, plans, strict=True), start=1)]
        ctx.progress(1.0, f"{len(clips)} clips planned")
        return JobPlan(inputs.job_id, media, options.to_json(), inputs.span, geometry, fps, tuple(clips), selection,
                       transcript, speaker_analysis(inputs.diarization, inputs.host, cut is not None),
                       layout_notes(options, geometry))

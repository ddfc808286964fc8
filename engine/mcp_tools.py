"""The MCP tools' catalogue: names, descriptions, input schemas and argument checks, as plain data.

Clipora speaks MCP on two transports: ``/mcp`` on the gateway (streamable HTTP, API keys) and
``clipora mcp`` (stdio, for a local agent), which either drives a running Clipora over its REST
API or runs jobs on this machine. All of them offer the same seven tools, declared once here:

    create_clips   a video (a URL; on the local stdio server a file path) + ProcessOptions -> a job
    get_job        one job, as GET /api/jobs/{jobId}
    list_jobs      the caller's jobs, newest first, as GET /api/jobs
    list_clips     a completed job's manifest, as GET /api/clips/{jobId}
    get_clip_file  where to download one artifact (GET /api/clips/{jobId}/{filename})
    cancel_job     cancel and delete a job, as DELETE /api/jobs/{jobId}
    render_clip    render one clip of a completed job again with edits, as POST /api/clips/{jobId}/{index}/render

Why here: the gateway and the composition root (``clipora/``) both import the engine, and
neither may import the other's side of the arrows the wrong way, so the shared part is a module
with no aiohttp and no MCP library in it. Each transport implements :class:`ClipTools` over
what it has (the gateway's internals, the REST client, the in-process engine) and hands calls to
:func:`call_tool`, which checks the arguments, so every implementation gets them checked alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from engine.edits import ClipEdit
from engine.errors import InvalidOptions
from engine.jobs import JOB_ID
from engine.options import ProcessOptions
from engine.service import ARTIFACT

#: how create_clips is given its video: a URL (the gateway, remote stdio) or a local path (local stdio)
Source = Literal["url", "path"]

#: the artifact names GET /api/clips/{jobId}/{filename} serves
FILENAME_PATTERN = ARTIFACT.pattern

SERVER_NAME = "clipora"
INSTRUCTIONS = (
    "Clipora turns a long video (podcast, interview, vlog, tutorial) into short, face-aware, captioned "
    "clips. Call create_clips, then poll get_job until its status is completed or failed (a job takes "
    "about as long as its source plays, often less), then list_clips for the clips and get_clip_file "
    "for a file's download URL."
)


class ToolError(Exception):
    """A tool call that cannot be done; its message is what the caller (a model) reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClipTools(Protocol):
    """What each transport implements; results are JSON objects (the REST API's shapes).

    Expected refusals raise ToolError, or the transport's own errors carrying ``message``
    (engine errors, the gateway's ApiError), which the transport turns into tool errors."""

    async def create_clips(self, source: str, options: ProcessOptions) -> dict[str, Any]: ...

    async def get_job(self, job_id: str) -> dict[str, Any]: ...

    async def list_jobs(self) -> dict[str, Any]: ...

    async def list_clips(self, job_id: str) -> dict[str, Any]: ...

    async def get_clip_file(self, job_id: str, filename: str) -> dict[str, Any]: ...

    async def cancel_job(self, job_id: str) -> dict[str, Any]: ...

    async def render_clip(self, job_id: str, index: int, edit: ClipEdit) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.input_schema.get("required", ()))


_JOB_ID = {"type": "string", "pattern": f"^{JOB_ID.pattern}$", "description": "the job's id (jobId)"}
_FILENAME = {"type": "string", "pattern": FILENAME_PATTERN,
             "description": "a file of the job: clip_NN.mp4 (a clip), clip_NN.jpg (its poster), its caption "
                            "track(s) (clip_NN.ass, …) or manifest.json; NN is the clip's index, 01, 02, …"}
_SOURCES: dict[str, dict[str, Any]] = {
    "url": {"type": "string", "format": "uri", "maxLength": 2048,
            "description": "a public http(s) URL: a direct link to a video file or a page on a video site "
                           "(YouTube, Vimeo, …); private and internal addresses are refused"},
    "path": {"type": "string", "minLength": 1,
             "description": "a video file on this machine (MP4, MOV, MKV or WEBM); it is copied, never changed"},
}


def _schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def tool_specs(source: Source = "url") -> list[ToolSpec]:
    """The seven tools; only create_clips' video argument depends on the transport (``source``)."""
    options = ProcessOptions.model_json_schema(by_alias=True, ref_template="#/properties/options/$defs/{model}")
    options["description"] = ("what to make, every key optional (the API's ProcessOptions), e.g. "
                              '{"numClips": 3, "clipLength": "short", "captionPreset": "mozi", "prompt": "…"}')
    where = "a video URL" if source == "url" else "a video file on this machine"
    edit = ClipEdit.model_json_schema(by_alias=True, ref_template="#/properties/edit/$defs/{model}")
    edit["description"] = ('what to change, e.g. {"start": 41.2, "end": 63.0, "captionPreset": "karaoke", '
                           '"words": [{"index": 812, "text": "Kubernetes"}]}')
    return [
        ToolSpec("create_clips",
                 f"Start a job that turns {where} into short captioned clips. Returns at once with the jobId "
                 "and status (downloading or queued); poll get_job until it is completed or failed.",
                 _schema({source: _SOURCES[source], "options": options}, (source,))),
        ToolSpec("get_job",
                 "One job: status (queued, downloading, processing, completed, failed), stage, progress (0-1), "
                 "message, error, clipCount and the options it runs with.",
                 _schema({"jobId": _JOB_ID}, ("jobId",))),
        ToolSpec("list_jobs", "Your jobs, newest first.", _schema({})),
        ToolSpec("list_clips",
                 "A completed job's clips (the manifest): per clip its start/end in the source, duration, "
                 "score, transcript, title, hook, hashtags and file URLs. Fails while the job is not completed.",
                 _schema({"jobId": _JOB_ID}, ("jobId",))),
        ToolSpec("get_clip_file",
                 "Where to download one file of a completed job (a clip, its poster or captions, or the "
                 "manifest).",
                 _schema({"jobId": _JOB_ID, "filename": _FILENAME}, ("jobId", "filename"))),
        ToolSpec("cancel_job", "Cancel a job (stopping it if it runs) and delete it and its files.",
                 _schema({"jobId": _JOB_ID}, ("jobId",))),
        ToolSpec("render_clip",
                 "Render one clip of a completed job again with edits: a new start/end (source seconds), "
                 "corrected words (by their index in the job's transcript), another caption preset, aspect "
                 "ratio, layout, or pauses/fillers cut. Edits accumulate; fields left out keep the clip's. "
                 "Returns the render's own jobId at once: poll get_job on it, then list_clips on the job shows "
                 "the clip's new version.",
                 _schema({"jobId": _JOB_ID, "index": {"type": "integer", "minimum": 1, "maximum": 99,
                                                      "description": "the clip's number (1 = clip_01)"},
                          "edit": edit}, ("jobId", "index", "edit"))),
    ]


TOOL_NAMES = tuple(spec.name for spec in tool_specs())


def _string(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"{name} required: a non-empty string")
    return value.strip()


def _job_id(args: Mapping[str, Any]) -> str:
    job_id = _string(args, "jobId")
    if not JOB_ID.fullmatch(job_id):
        raise ToolError("job not found")  # as the REST routes answer an id no job can have
    return job_id


async def call_tool(tools: ClipTools, spec: ToolSpec, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``arguments`` against the tool's schema, then run it on ``tools``.

    Raises ToolError for bad arguments, InvalidOptions included (its message names the option)."""
    args = dict(arguments or {})
    known = spec.input_schema["properties"]
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ToolError(f"unknown argument {unknown[0]!r} (known: {', '.join(known) or 'none'})")
    for name in spec.required:
        if args.get(name) is None:
            raise ToolError(f"{name} required")
    if spec.name == "create_clips":
        source = "url" if "url" in known else "path"
        raw = args.get("options")
        if raw is not None and not isinstance(raw, dict):
            raise ToolError('options must be a JSON object, e.g. {"numClips": 3}')
        try:
            options = ProcessOptions.from_json(raw or {})
        except InvalidOptions as exc:
            raise ToolError(exc.message) from None
        return await tools.create_clips(_string(args, source), options)
    if spec.name == "list_jobs":
        return await tools.list_jobs()
    job_id = _job_id(args)
    if spec.name == "get_job":
        return await tools.get_job(job_id)
    if spec.name == "list_clips":
        return await tools.list_clips(job_id)
    if spec.name == "get_clip_file":
        return await tools.get_clip_file(job_id, _string(args, "filename"))
    if spec.name == "cancel_job":
        return await tools.cancel_job(job_id)
    if spec.name == "render_clip":
        index, raw = args.get("index"), args.get("edit")
        if not isinstance(index, int) or isinstance(index, bool) or not 1 <= index <= 99:
            raise ToolError("index must be a clip's number, an integer from 1 to 99")
        if not isinstance(raw, dict):
            raise ToolError('edit must be a JSON object, e.g. {"captionPreset": "mozi"}')
        try:
            edit = ClipEdit.from_json(raw)
        except InvalidOptions as exc:
            raise ToolError(exc.message) from None
        return await tools.render_clip(job_id, index, edit)
    raise ToolError(f"unknown tool {spec.name!r}")  # a spec without an implementation: a bug, said plainly

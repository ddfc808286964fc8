"""POST /mcp: the MCP server (streamable HTTP) over this gateway, for agents holding an API key.

The tools are the catalogue of :mod:`engine.mcp_tools` (create_clips, get_job, list_jobs,
list_clips, get_clip_file, cancel_job), run here by :class:`GatewayTools` over the gateway's own
internals, for the caller's account: ownership is the REST routes' own check (``job_of``), a URL
job is created by ``upload_url.submit_url`` (the same URL policy and capacity checks as POST
/api/upload/url), and get_job / list_clips answer the REST routes' JSON.

Auth: an API key only (``X-API-Key`` or ``Authorization: Bearer``), resolved by the auth
middleware; a browser session is 403 and no credentials 401. API-key requests are exempt from
the CSRF check (a browser never attaches a key by itself), so a key's POSTs pass it.

Transport: the MCP package's ``StreamableHTTPSessionManager``, in **stateless** mode with **JSON
responses**. Stateless, because every tool call stands alone (the job's state lives in the job
store, not in an MCP session) and because any gateway of a cluster can then answer any request,
with nothing to pin or expire; JSON responses, because no tool streams (progress is polled with
get_job, or watched on /ws), so one POST gets one JSON-RPC reply. Without a session there is no
GET stream and no DELETE: /mcp routes POST only (GET/DELETE are a JSON 405).

The manager is an ASGI app; :func:`mcp_endpoint` bridges one aiohttp request into it: the scope
is built from the request (with the caller under ``clipora.caller``), the body (read here, under
the gateway's size and time limits) is fed through ``receive``, the ``send`` messages become the
aiohttp response (streamed if the transport streams), and a client that leaves mid-call is seen
(``http.disconnect``, and the call cancelled). Its task group runs in a task of its own for the
app's life (``cleanup_ctx``): anyio needs a cancel scope to end in the task that began it.

Errors: what the gateway refuses before the body is an MCP message (credentials 401/403, method
405, Content-Type 415, Accept 406, size 413, a stalled body 408, not JSON 400, rate limits 429)
is ``{"error": "..."}`` like every other route; once the body is JSON the answer is MCP's, a
JSON-RPC message (a JSON-RPC error body at 400 for a malformed message), which MCP clients read.
A refusal inside a tool (not yours, not ready, a bad option) is a tool result with ``isError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
from aiohttp import web
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from engine.edits import ClipEdit
from engine.errors import ClipporaError
from engine.mcp_tools import INSTRUCTIONS, SERVER_NAME, ClipTools, Source, ToolError, call_tool, tool_specs
from engine.options import ProcessOptions
from engine.service import JobService
from http_gateway.admission import record_job
from http_gateway.auth import TRUST_PROXY, Principal, is_https, require_user
from http_gateway.bodies import JSON_BODY_LIMIT, body_timeout, loads, read_body
from http_gateway.config import SERVICE, SETTINGS
from http_gateway.errors import (
    ApiError,
    Forbidden,
    NotAcceptable,
    ServiceUnavailable,
    UnsupportedMediaType,
    engine_status,
)
from http_gateway.middleware import add_security_headers, error_response
from http_gateway.routes.clips import CONTENT_TYPES, artifact_of, manifest_of, render_clip
from http_gateway.routes.jobs import delete, job_detail, job_of, jobs_list
from http_gateway.routes.styles import resolve_caption_style, resolve_edit_style
from http_gateway.routes.upload_url import submit_url

log = logging.getLogger("clipora.mcp")

PATH = "/mcp"
#: how often a running call looks whether its client is still connected
DISCONNECT_POLL_S = 0.5
#: the ASGI scope key under which the tool handlers find who is calling
CALLER_KEY = "clipora.caller"


def _version() -> str:
    try:
        return importlib.metadata.version("clipora")
    except importlib.metadata.PackageNotFoundError:  # a source checkout that was never installed
        return "0"


# -- the tools, over the engine's job service ------------------------------------------------------

class ServiceTools:
    """The tools over a :class:`JobService` for one account. Subclasses say how a video arrives
    (:meth:`create_clips`) and where a file is fetched from (:meth:`file_location`)."""

    def __init__(self, service: JobService, user_id: str, app: web.Application | None = None) -> None:
        self.service = service
        self.user_id = user_id
        self.app = app  # the gateway's, where there is one (get_job adds what its routes add)

    async def create_clips(self, source: str, options: ProcessOptions) -> dict[str, Any]:
        raise NotImplementedError

    def file_location(self, job_id: str, filename: str, path: Path) -> dict[str, Any]:
        raise NotImplementedError

    async def get_job(self, job_id: str) -> dict[str, Any]:
        return await job_detail(self.app, await job_of(self.service, job_id, self.user_id))

    async def list_jobs(self) -> dict[str, Any]:
        return await jobs_list(self.service, self.user_id)

    async def list_clips(self, job_id: str) -> dict[str, Any]:
        return await manifest_of(self.service, await job_of(self.service, job_id, self.user_id))

    async def get_clip_file(self, job_id: str, filename: str) -> dict[str, Any]:
        job = await job_of(self.service, job_id, self.user_id)
        path = artifact_of(self.service, job, filename)
        return {"jobId": job.id, "filename": filename, "contentType": CONTENT_TYPES[path.suffix],
                "sizeBytes": path.stat().st_size, **self.file_location(job.id, filename, path)}

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        return await delete(self.service, await job_of(self.service, job_id, self.user_id))

    async def render_clip(self, job_id: str, index: int, edit: ClipEdit) -> dict[str, Any]:
        # the service refuses a job that is not completed, a clip it lacks, and a clip rendering already
        return await render_clip(self.service, await job_of(self.service, job_id, self.user_id), index,
                                 edit.to_json())


def upload_response(job: Any, options: ProcessOptions) -> dict[str, Any]:
    """create_clips' result: what POST /api/upload/url answers."""
    return {"jobId": job.id, "originalName": job.original_name, "sizeBytes": job.size_bytes,
            "status": job.status.value, "wsUrl": f"/ws?jobId={job.id}", "options": options.to_json()}


@dataclass(frozen=True)
class Caller:
    principal: Principal
    #: this site's origin as the client reached it (or CLIPORA_PUBLIC_URL); "" when unknown
    base_url: str


class GatewayTools(ServiceTools):
    """The tools as /mcp runs them: the caller's account, a URL job through ``submit_url``."""

    def __init__(self, app: web.Application, caller: Caller) -> None:
        super().__init__(app[SERVICE], caller.principal.user_id, app)
        self.gateway = app
        self.caller = caller

    async def create_clips(self, source: str, options: ProcessOptions) -> dict[str, Any]:
        # captionStyleId and an uploaded captionStyle.font, as POST /api/upload/url resolves them
        options = await resolve_caption_style(self.gateway, self.user_id, options)
        job = await submit_url(self.gateway, self.caller.principal, source, options)
        body = upload_response(job, options)
        # as POST /api/upload/url does after submit_url: a webhookUrl's signing secret, shown once
        if secret := await record_job(self.gateway, job.id, self.user_id, options, None):
            body["webhookSecret"] = secret
        return body

    async def render_clip(self, job_id: str, index: int, edit: ClipEdit) -> dict[str, Any]:
        # an uploaded captionStyle.font, as POST /api/clips/{jobId}/{index}/render resolves it
        body = await resolve_edit_style(self.gateway, self.user_id, edit.to_json())
        return await super().render_clip(job_id, index, ClipEdit.from_json(body))

    def file_location(self, job_id: str, filename: str, path: Path) -> dict[str, Any]:
        return {"url": f"{self.caller.base_url}/api/clips/{job_id}/{filename}",
                "headers": "send your API key (X-API-Key or Authorization: Bearer) with the download"}


# -- the MCP server over any ClipTools ---------------------------------------------------------------

def _text(value: Any) -> list[types.ContentBlock]:
    return [types.TextContent(text=value if isinstance(value, str) else json.dumps(value))]


def _error_message(exc: Exception) -> str:
    """What a refused call tells its caller: the error's own message, except for internal errors."""
    if isinstance(exc, ToolError):
        return exc.message
    status = exc.status if isinstance(exc, ApiError) else engine_status(exc) if isinstance(exc, ClipporaError) \
        else 500
    if status >= 500 and status != 503:
        log.error("tool failed: %s", getattr(exc, "message", exc))
        return "internal server error"
    return str(getattr(exc, "message", exc))


def mcp_server(tools_for: Callable[[ServerRequestContext[Any, Any]], ClipTools], source: Source) -> Server[Any]:
    """A low-level MCP server offering the catalogue's tools, each call run on ``tools_for(ctx)``.

    /mcp passes the caller's :class:`GatewayTools`; ``clipora mcp`` (stdio) a REST client or the
    in-process engine. An unknown tool name is a protocol error (JSON-RPC invalid params); a call
    that cannot be done is a result with ``isError`` and the reason, which the model reads."""
    specs = {spec.name: spec for spec in tool_specs(source)}
    listed = [types.Tool(name=s.name, description=s.description, input_schema=s.input_schema)
              for s in specs.values()]

    async def list_tools(ctx: ServerRequestContext[Any, Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = specs.get(params.name)
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}; tools: {', '.join(specs)}")
        try:
            result = await call_tool(tools_for(ctx), spec, params.arguments)
        except (ToolError, ApiError, ClipporaError) as exc:
            return types.CallToolResult(content=_text(_error_message(exc)), is_error=True)
        except Exception:
            log.exception("tool %s crashed", spec.name)
            return types.CallToolResult(content=_text("internal server error"), is_error=True)
        return types.CallToolResult(content=_text(result), structured_content=result)

    def input_schema(name: str) -> dict[str, Any] | None:
        spec = specs.get(name)
        return spec.input_schema if spec else None

    return Server(SERVER_NAME, version=_version(), instructions=INSTRUCTIONS, on_list_tools=list_tools,
                  on_call_tool=call, get_tool_input_schema=input_schema)


# -- /mcp: the aiohttp request, bridged into the transport's ASGI app ----------------------------------

class McpEndpoint:
    """The app's MCP server and its (stateless, JSON-response) session manager."""

    def __init__(self, app: web.Application) -> None:
        def tools_for(ctx: ServerRequestContext[Any, Any]) -> ClipTools:
            caller = ctx.request.scope[CALLER_KEY] if ctx.request is not None else None
            if not isinstance(caller, Caller):  # only mcp_endpoint feeds this server
                raise ToolError("no caller on this request")
            return GatewayTools(app, caller)

        self.server = mcp_server(tools_for, "url")
        # the body limit is the gateway's (read_body); DNS-rebinding checks are moot: only API keys are
        # taken here, and no page can make a browser attach one
        self.manager = StreamableHTTPSessionManager(self.server, stateless=True, json_response=True)
        self.running = False


MCP: web.AppKey[McpEndpoint] = web.AppKey("mcp", McpEndpoint)


def _base_url(request: web.Request) -> str:
    settings = request.config_dict.get(SETTINGS)
    if settings is not None and settings.public_url:
        return str(settings.public_url).rstrip("/")
    host = request.host
    if request.config_dict.get(TRUST_PROXY) and request.headers.get("X-Forwarded-Host"):
        host = request.headers["X-Forwarded-Host"].split(",")[0].strip()
    if not host:
        return ""
    return f"{'https' if is_https(request) else 'http'}://{host}"


def _accepts_json(accept: str | None) -> bool:
    if accept is None or not accept.strip():  # RFC 9110: no Accept means anything is acceptable
        return True
    kinds = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(kinds & {"application/json", "application/*", "*/*"})


def _scope(request: web.Request, body: bytes, caller: Caller) -> dict[str, Any]:
    headers = [(name.lower(), value) for name, value in request.raw_headers
               if name.lower() not in (b"content-length", b"accept")]
    headers.append((b"content-length", str(len(body)).encode()))
    # the transport insists on an Accept naming JSON; an absent one (anything goes) is said so explicitly
    accept = request.headers.get("Accept", "").strip() or "application/json"
    headers.append((b"accept", accept.encode("latin-1")))
    peer = request.transport.get_extra_info("peername") if request.transport else None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": "https" if is_https(request) else "http",
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1", "replace"),
        "query_string": request.query_string.encode("latin-1", "replace"),
        "root_path": "",
        "headers": headers,
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(sock[:2]) if isinstance(sock, tuple) else None,
        "state": {},
        CALLER_KEY: caller,
    }


class _Exchange:
    """One request through the ASGI app: ``receive`` gives the body, then waits for a disconnect;
    ``send`` collects the response (a streamed one is written through as it comes)."""

    def __init__(self, request: web.Request, body: bytes) -> None:
        self.request = request
        self.body: bytes | None = body
        self.disconnected = asyncio.Event()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.content_type = ""
        self.chunks: list[bytes] = []
        self.stream: web.StreamResponse | None = None
        self.finished = False

    async def receive(self) -> dict[str, Any]:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if self.disconnected.is_set():
            raise OSError("the client disconnected")  # ASGI 2.4: a send after the disconnect raises
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = {}
            for raw_name, raw_value in message.get("headers", []):
                name = raw_name.decode("latin-1").lower()
                if name not in _HOP_HEADERS:
                    self.headers[name] = raw_value.decode("latin-1")
            self.content_type = self.headers.pop("content-type", "").split(";")[0].strip().lower()
            return
        if message["type"] != "http.response.body" or not self.status or self.finished:
            return
        chunk, more = bytes(message.get("body", b"")), bool(message.get("more_body", False))
        if self.stream is None and more:  # a streamed answer (SSE): written through as it comes
            self.stream = web.StreamResponse(status=self.status, headers=self._headers())
            self.stream.content_type = self.content_type or "application/octet-stream"
            add_security_headers(self.stream)  # prepared here, before the middleware sees it
            await self.stream.prepare(self.request)
        if self.stream is not None:
            if chunk:
                await self.stream.write(chunk)
            if not more:
                await self.stream.write_eof()
        else:
            self.chunks.append(chunk)
        self.finished = not more

    def _headers(self) -> dict[str, str]:
        return {"cache-control": "no-store", **self.headers}  # every answer is about this one request

    def response(self) -> web.StreamResponse:
        if self.stream is not None:
            return self.stream
        if not self.status:  # the app ended without answering
            return error_response(500, "internal server error")
        body = b"".join(self.chunks)
        if self.status >= 400 and self.content_type != "application/json":
            # a refusal the transport wrote in plain text: in the gateway's shape, like every error
            return error_response(self.status, body.decode("utf-8", "replace").strip() or "request refused")
        response = web.Response(status=self.status, body=body or None, headers=self._headers())
        if body:  # an empty answer (202 to a notification) has no type
            response.content_type = self.content_type or "application/json"
        return response

    async def run(self, app: Callable[..., Awaitable[None]], scope: dict[str, Any]) -> web.StreamResponse:
        task = asyncio.ensure_future(app(scope, self.receive, self.send))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
                transport = self.request.transport
                if not task.done() and (transport is None or transport.is_closing()):
                    self.disconnected.set()  # the transport sees http.disconnect; the call is stopped
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    raise ConnectionResetError("the client left during an MCP call")
            task.result()
        except asyncio.CancelledError:
            task.cancel()
            raise
        return self.response()


_HOP_HEADERS = frozenset({"content-length", "connection", "keep-alive", "transfer-encoding"})


async def mcp_endpoint(request: web.Request) -> web.StreamResponse:
    principal = require_user(request)
    if principal.via != "key":
        raise Forbidden("/mcp takes an API key (X-API-Key or Authorization: Bearer); a signed-in session "
                        "is not accepted here")
    if request.content_type != "application/json":
        raise UnsupportedMediaType('send one JSON-RPC message as a JSON body (Content-Type: application/json)')
    if not _accepts_json(request.headers.get("Accept")):
        raise NotAcceptable("/mcp answers in JSON: send Accept: application/json (with text/event-stream)")
    endpoint = request.config_dict[MCP]
    body = await read_body(request, JSON_BODY_LIMIT, body_timeout(request))
    loads(body, "the body is not valid JSON")  # 400 as the gateway says it; JSON-RPC checks are MCP's
    if not endpoint.running:
        raise ServiceUnavailable("the MCP server is not running")
    caller = Caller(principal, _base_url(request))
    return await _Exchange(request, body).run(endpoint.manager.handle_request, _scope(request, body, caller))


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The session manager's task group, for the app's life, in a task of its own (anyio requires
    a cancel scope to exit in the task it was entered in; startup and cleanup may run in two)."""
    endpoint = app[MCP]
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with endpoint.manager.run():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold(), name="mcp-session-manager")
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # it failed to start: say why, and the app does not start either
    endpoint.running = True
    try:
        yield
    finally:
        endpoint.running = False
        stop.set()
        try:  # the session manager ends its sessions and its task group; bounded, so shutdown cannot hang here
            await asyncio.wait_for(task, 10.0)
        except TimeoutError:
            log.error("the MCP session manager did not stop within 10 s")


def setup(app: web.Application) -> None:
    app[MCP] = McpEndpoint(app)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post(PATH, mcp_endpoint)

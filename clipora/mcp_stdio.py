"""``clipora mcp``: an MCP server on stdin/stdout, for an agent on this machine (Claude Desktop, an IDE, …).

It offers the tools of :mod:`engine.mcp_tools` (the same names, descriptions and schemas as the
gateway's /mcp) in one of two modes:

- **remote** (``--server-url`` + ``--api-key``, or CLIPORA_SERVER_URL + CLIPORA_API_KEY): every
  call is a request to that Clipora's REST API (:class:`RestTools`), as the key's account. The
  REST API rather than a relay to the server's /mcp: it is the binding contract (spec/), so this
  mode works against any Clipora whatever MCP revision either side speaks, errors arrive as the
  routes' ``{"error"}`` messages (ownership, readiness, the URL policy, capacity) and become the
  tool errors unchanged, and only one MCP conversation (agent <-> this process) has to agree.
- **local** (neither given): jobs run in this process as with ``clipora serve`` at
  CLIPORA_WORKERS=0: the engine's JobService over the embedded store in ``--data-dir`` (SQLite
  + job folders; CLIPORA_DATA_DIR, default ./data) and the composition root's job function,
  the graph and worker ``clipora process`` runs (:class:`LocalTools`). create_clips takes a
  file path here (the file is hard-linked or copied in, never changed); files are reported as
  paths. Jobs belong to one local account, so list_jobs shows this machine's jobs across runs,
  and a job interrupted by the server's exit resumes from its cache at the next start.

While it serves, fd 1 is diverted to stderr (the MCP package's stdio transport does that), so
nothing a library prints can corrupt the protocol; logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import httpx

from engine.config import Settings
from engine.edits import ClipEdit
from engine.mcp_tools import ClipTools, ToolError
from engine.options import ProcessOptions
from http_gateway.routes.mcp import ServiceTools, mcp_server, upload_response

log = logging.getLogger("clipora.mcp")

LOCAL_EMAIL = "local@clipora.invalid"  # the local mode's account (no password: it cannot sign in)
#: containers by file suffix (the pipeline's probe decides by content; this only names the file)
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mp4", ".mkv": "mkv", ".webm": "webm"}
REST_TIMEOUT_S = 60.0


# -- remote: a running Clipora over its REST API ------------------------------------------------------

class RestTools:
    """The tools as requests to a Clipora server's REST API, with one API key."""

    def __init__(self, server_url: str, api_key: str, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = server_url.rstrip("/")
        self.http = client or httpx.AsyncClient(base_url=self.base_url, headers={"X-API-Key": api_key},
                                                timeout=REST_TIMEOUT_S, follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ToolError(f"cannot reach the Clipora server at {self.base_url}: {exc or type(exc).__name__}") \
                from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = f"the server answered {response.status_code} {response.reason_phrase}"
            raise ToolError(str(message))
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = (await self._request(method, path, **kwargs)).json()
        if not isinstance(body, dict):
            raise ToolError("the server's answer is not a JSON object")
        return body

    async def create_clips(self, source: str, options: ProcessOptions) -> dict[str, Any]:
        # only what the caller set: the server fills in its own defaults (and an older one knows no newer keys)
        given = options.model_dump(by_alias=True, exclude_unset=True)
        return await self._json("POST", "/api/upload/url", json={"url": source, "options": given})

    async def get_job(self, job_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/jobs/{job_id}")

    async def list_jobs(self) -> dict[str, Any]:
        return await self._json("GET", "/api/jobs")

    async def list_clips(self, job_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/clips/{job_id}")

    async def get_clip_file(self, job_id: str, filename: str) -> dict[str, Any]:
        path = f"/api/clips/{job_id}/{filename}"
        # one byte of it: the route's own checks (yours, completed, a published name) and its size
        response = await self._request("GET", path, headers={"Range": "bytes=0-0"})
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else int(response.headers.get("Content-Length", 0))
        return {"jobId": job_id, "filename": filename,
                "contentType": response.headers.get("Content-Type", "application/octet-stream"),
                "sizeBytes": size, "url": f"{self.base_url}{path}",
                "headers": "send your API key (X-API-Key or Authorization: Bearer) with the download"}

    async def cancel_job(self, job_id: str) -> dict[str, Any]:
        return await self._json("DELETE", f"/api/jobs/{job_id}")

    async def render_clip(self, job_id: str, index: int, edit: ClipEdit) -> dict[str, Any]:
        return await self._json("POST", f"/api/clips/{job_id}/{index}/render", json=edit.to_json())


# -- local: the engine in this process ------------------------------------------------------------------

class LocalTools(ServiceTools):
    """The tools over an in-process JobService: a local file in, files reported as paths."""

    async def create_clips(self, source: str, options: ProcessOptions) -> dict[str, Any]:
        if options.webhook_url:
            raise ToolError("webhookUrl needs a Clipora server to deliver it (clipora serve); here, poll get_job")
        options.check_speech_model(Settings.from_env().whisper_multilingual)  # as the gateway checks at submit
        path = Path(source).expanduser()
        if not path.is_file():
            raise ToolError(f"no such file: {source}")
        self.service.uploads_dir.mkdir(parents=True, exist_ok=True)
        part = self.service.uploads_dir / f"{secrets.token_hex(16)}.part"
        try:
            size = await asyncio.to_thread(_link_or_copy, path.resolve(), part)
            job = await self.service.submit(self.user_id, part, path.name[:255], size, options,
                                            CONTAINERS.get(path.suffix.lower(), "mp4"))
        except OSError as exc:
            raise ToolError(f"cannot read {source}: {exc.strerror or exc}") from None
        finally:
            part.unlink(missing_ok=True)  # submit moved it into the job's folder unless it failed
        result = upload_response(job, options)
        result["wsUrl"] = None  # no WebSocket here: poll get_job
        return result

    def file_location(self, job_id: str, filename: str, path: Path) -> dict[str, Any]:
        return {"path": str(path), "url": path.resolve().as_uri()}


def _link_or_copy(source: Path, target: Path) -> int:
    """A hard link where the data dir shares the file system (no copy of a long video), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target.stat().st_size


async def _local_user(db: Any, plan: str) -> str:
    from sqlalchemy import select

    from http_gateway.accounts import new_id, now_ms
    from http_gateway.models import User

    async with db.session() as session, session.begin():
        user = (await session.execute(select(User).where(User.email == LOCAL_EMAIL))).scalar_one_or_none()
        if user is None:
            user = User(id=new_id(), email=LOCAL_EMAIL, password_hash="!", plan=plan, created_at=now_ms())
            session.add(user)
        return str(user.id)


# -- serving ------------------------------------------------------------------------------------------

async def serve_tools(tools: ClipTools, source: str) -> None:
    """Serve ``tools`` over this process's stdin/stdout until the client closes stdin."""
    from mcp.server.stdio import stdio_server

    server = mcp_server(lambda ctx: tools, "url" if source == "url" else "path")
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_remote(server_url: str, api_key: str) -> None:
    tools = RestTools(server_url, api_key)
    try:
        await serve_tools(tools, "url")
    finally:
        await tools.aclose()


async def serve_local(gateway_settings: Any, engine_settings: Any) -> None:
    from clipora.compose import StageSet, job_function
    from engine.service import JobService
    from http_gateway.app import database_for

    stages = StageSet()
    run = job_function(engine_settings, stages)  # ValueError: unusable provider settings, before serving
    db = database_for(gateway_settings)
    service = JobService(db, gateway_settings.data_dir, run, executor_config=gateway_settings.executor_config(),
                         queue_bound=gateway_settings.queue_bound)
    await service.start()  # migrates; jobs an earlier run left unfinished are queued again
    try:
        user_id = await _local_user(db, gateway_settings.default_plan)
        log.info("clipora mcp: jobs run on this machine (data in %s)", gateway_settings.data_dir)
        await serve_tools(LocalTools(service, user_id), "path")
    finally:
        await service.stop()
        await db.close()
        await asyncio.to_thread(stages.worker(engine_settings).close)

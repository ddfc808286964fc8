"""Probing an untrusted file before it becomes a job, for both upload paths (multipart and URL).

The probe runs in a child process that is killed when it takes
longer than ``CLIPORA_PROBE_TIMEOUT_S``: a crafted file cannot keep a gateway thread or its
memory busy after the request gave up. The child opens the file with FFmpeg's protocol
whitelist ``file`` and only the accepted demuxers (no playlist can reach the network or other
files), and applies the probe's limits (streams, 8K, duration). The gateway does not know which
program that is: the app factory (the composition root) puts its command line under
``PROBE_COMMAND`` (``python -m stages.media.probe``); it prints one JSON line, ``{"media": {...}}`` or
``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

from aiohttp import web

from engine.errors import InvalidMedia
from engine.types import MediaInfo

PROBE_COMMAND: web.AppKey[tuple[str, ...]] = web.AppKey("probe_command", tuple)

MAX_OUTPUT = 64 * 1024
# the child decodes a handful of frames: one thread each is plenty, and keeps a probe off the job's cores
CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


async def probe_untrusted(command: tuple[str, ...], path: Path, timeout_s: float,
                          max_duration_s: float | None) -> MediaInfo:
    """MediaInfo of ``path`` (probed by running ``command``), or InvalidMedia with a message for the user."""
    args = [*command, str(path)]
    if max_duration_s is not None:
        args += ["--max-duration", str(max_duration_s)]
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **CHILD_ENV})
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        raise InvalidMedia("the file could not be read as a video in time") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    try:
        result = json.loads(out[:MAX_OUTPUT].decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        # killed by a signal (out of memory, a decoder crash) or printed nothing
        raise InvalidMedia("the file could not be read as a video") from None
    if "error" in result:
        raise InvalidMedia(str(result["error"]))
    return MediaInfo(**result["media"])

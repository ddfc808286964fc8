"""Fetching a video by URL, inside the URL policy: direct media links and yt-dlp.

:func:`fetch_direct` GETs the URL with aiohttp through a :class:`PolicyResolver` and a socket
factory that connects only to addresses the policy checked, follows redirects itself (each hop
checked again, at most ``max_redirects``), and streams a media response to disk counting bytes
against the same limit as uploads. A response that is not media (an HTML page) returns None:
the caller hands the URL to :func:`fetch_with_ytdlp`.

:func:`fetch_with_ytdlp` runs yt-dlp as a library in a worker thread with ``proxy`` set to a
:class:`PolicyProxy`, native downloaders only (no ffmpeg/rtmpdump fetching on its own), formats
limited to http(s)/HLS/DASH, and ffmpeg's merge inputs limited to the ``file`` protocol. The
thread is also fenced by an audit hook: a socket connection anywhere but the proxy, a name
lookup, or a subprocess other than a fenced ffmpeg raises PermissionError, so a request
handler that ignored the proxy could not reach the network by itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from engine.errors import PermanentError
from http_gateway.fetch_proxy import PolicyProxy
from http_gateway.url_policy import Pins, PolicyResolver, UrlPolicy, UrlRefused

log = logging.getLogger("clipora.url_fetch")

CHUNK = 256 * 1024
MEDIA_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm"}
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream", "application/mp4"}
REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "Clipora/0.1 (+upload by URL)"
# formats whose bytes yt-dlp's own (proxied) downloaders fetch; rtmp, rtsp, f4m, mms are not among them
SAFE_PROTOCOLS = r"^(https?|m3u8_native|http_dash_segments)$"
# demuxers ffmpeg may use on what yt-dlp downloaded (no hls/concat/playlists that open more files)
MERGE_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,aac,mp3,ogg,flv"

#: (bytes so far, total bytes when known) -> None; may be called from a worker thread
ProgressFn = Callable[[int, int | None], None]


class FetchFailed(PermanentError):
    """The video could not be fetched (HTTP error, timeout, not a video, too large)."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 3600.0
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    title: str  # display text for originalName (sanitised by the caller)


def too_large(limit: int) -> FetchFailed:
    return FetchFailed(f"the video is larger than the limit of {limit} bytes")


def _is_media(content_type: str, path: str) -> bool:
    if content_type.startswith("video/"):
        return True
    return content_type in GENERIC_TYPES and Path(path).suffix.lower() in MEDIA_EXTENSIONS


def _refusal(exc: aiohttp.ClientConnectorError) -> str | None:
    os_error = exc.os_error
    if isinstance(os_error, PermissionError):
        return f"URL refused: {os_error}"
    return None


async def fetch_direct(url: str, dest: Path, policy: UrlPolicy, limits: FetchLimits, progress: ProgressFn,
                       resolver: AbstractResolver | None = None) -> Fetched | None:
    """Download a direct media link to ``dest``; None when the URL is not a media file."""
    pins = Pins()
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy, pins, resolver), use_dns_cache=False,
                                     socket_factory=pins.socket_factory, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, connect=limits.connect_timeout_s,
                                    sock_connect=limits.connect_timeout_s, sock_read=limits.read_timeout_s)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    target = policy.check_url(url)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                     auto_decompress=False, headers=headers) as session:
        for _ in range(limits.max_redirects + 1):
            if target.ip is not None:
                pins.add(target.ip)
            try:
                async with session.get(target.url, allow_redirects=False) as response:
                    if response.status in REDIRECTS:
                        location = response.headers.get("Location", "")
                        if not location:
                            raise FetchFailed(f"the URL answered HTTP {response.status} without a Location")
                        target = policy.check_url(str(target.url.join(URL(location))))
                        continue
                    if response.status != 200:
                        raise FetchFailed(f"the URL answered HTTP {response.status} {response.reason or ''}".strip())
                    if not _is_media(response.content_type, target.url.path):
                        return None
                    if response.content_length is not None and response.content_length > limits.max_bytes:
                        raise too_large(limits.max_bytes)
                    size = await _stream_to(response, dest, limits.max_bytes, progress)
                    return Fetched(dest, size, target.url.name or target.host)
            except aiohttp.ClientConnectorError as exc:
                refused = _refusal(exc)
                if refused:
                    raise UrlRefused(refused) from None
                raise FetchFailed(f"could not connect to {target.host}: {exc.os_error.strerror or exc}") from None
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise FetchFailed("the download timed out (no data within the read timeout)") from None
            except aiohttp.ClientError as exc:
                raise FetchFailed(f"the download failed: {type(exc).__name__}") from None
    raise FetchFailed(f"too many redirects (more than {limits.max_redirects})")


async def _stream_to(response: aiohttp.ClientResponse, dest: Path, limit: int, progress: ProgressFn) -> int:
    size = 0
    total = response.content_length
    with dest.open("wb") as out:
        async for chunk in response.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            out.write(chunk)
            progress(size, total)
    if total is not None and size != total:
        raise FetchFailed(f"the download ended early ({size} of {total} bytes)")
    if size == 0:
        raise FetchFailed("the URL returned an empty file")
    return size


# -- yt-dlp --------------------------------------------------------------------------------------

class _Fence(threading.local):
    proxy: tuple[str, int] | None = None


_fence = _Fence()
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    proxy = _fence.proxy
    if proxy is None:
        return
    if event == "socket.connect":
        address = args[1]
        if not (isinstance(address, tuple) and tuple(address[:2]) == proxy):
            raise PermissionError(f"yt-dlp may connect only through the URL policy proxy, not to {address!r}")
    elif event == "socket.getaddrinfo":
        if str(args[0]) != proxy[0]:
            raise PermissionError("yt-dlp may not resolve names itself; the URL policy proxy does")
    elif event == "subprocess.Popen":
        executable, argv = args[0], [str(a) for a in (args[1] or [])]
        name = Path(str(executable or (argv[0] if argv else ""))).name
        reads_input = any(a == "-i" or a.startswith("file:") for a in argv)
        if name not in ("ffmpeg", "ffprobe") or (reads_input and "-protocol_whitelist" not in argv):
            raise PermissionError(f"yt-dlp may not run {name!r} here")


@contextlib.contextmanager
def fenced(proxy_port: int) -> Iterator[None]:
    """Fence the calling thread: network only to the proxy, no other subprocesses."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # cannot be removed; costs one thread-local read when unfenced
            _hook_installed = True
    _fence.proxy = ("127.0.0.1", proxy_port)
    try:
        yield
    finally:
        _fence.proxy = None


class _YdlLogger:
    def __init__(self) -> None:
        self.over_limit = False

    def debug(self, msg: str) -> None:
        if "larger than max-filesize" in msg:  # yt-dlp skips such a file quietly
            self.over_limit = True
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        self.debug(msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)


class _Abort(Exception):
    """Raised from a progress hook to stop yt-dlp (limit, deadline, cancel)."""

    def __init__(self, reason: FetchFailed) -> None:
        super().__init__(reason.message)
        self.reason = reason


def ytdlp_options(workdir: Path, proxy_url: str, limits: FetchLimits, hook: Callable[[dict[str, Any]], None],
                  logger: _YdlLogger | None = None) -> dict[str, Any]:
    p = f"[protocol~='{SAFE_PROTOCOLS}']"
    fence = ["-protocol_whitelist", "file", "-format_whitelist", MERGE_FORMATS]
    return {
        # best <= 1080p with audio: video+audio merged, else the best single file that has both
        "format": f"bv*[height<=?1080]{p}+ba{p}/b[height<=?1080]{p}[acodec!=none]/b[height<=?1080]{p}",
        "merge_output_format": "mp4",
        "outtmpl": {"default": "media.%(ext)s"},
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "proxy": proxy_url,
        "noplaylist": True,
        "max_filesize": limits.max_bytes,
        "socket_timeout": limits.read_timeout_s,
        "retries": 1, "fragment_retries": 1, "extractor_retries": 0,
        "external_downloader": {"default": "native"}, "hls_prefer_native": True,
        "concurrent_fragment_downloads": 1,  # fragments in this (fenced) thread
        "match_filter": lambda info, *_, **__: "live streams cannot be fetched" if info.get("is_live") else None,
        "postprocessor_args": {"merger+ffmpeg_i": fence, "merger+ffmpeg": []},
        "fixup": "never",
        "cachedir": False, "noprogress": True, "quiet": True, "no_warnings": True, "logger": logger or _YdlLogger(),
        "progress_hooks": [hook],
        "overwrites": True, "restrictfilenames": True, "windowsfilenames": True,
        "writethumbnail": False, "writesubtitles": False, "writeinfojson": False,
        "updatetime": False, "check_formats": False, "color": "no_color",
    }


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clean(message: str) -> str:
    text = _ANSI.sub("", message).replace("ERROR: ", "").strip()
    return text.splitlines()[0][:300] if text else "the video could not be fetched"


def _run_ytdlp(url: str, workdir: Path, proxy_url: str, proxy_port: int, limits: FetchLimits,
               progress: ProgressFn, cancel: threading.Event, deadline: float) -> Fetched:
    import yt_dlp  # heavy (1000 extractors): only when a site link needs it

    parts: dict[str, tuple[int, int | None]] = {}

    def hook(d: dict[str, Any]) -> None:
        if cancel.is_set():
            raise _Abort(FetchFailed("the download was cancelled"))
        if time.monotonic() > deadline:
            raise _Abort(FetchFailed("the download took longer than the total timeout"))
        if d.get("status") != "downloading":
            return
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        parts[str(d.get("filename"))] = (int(d.get("downloaded_bytes") or 0), int(total) if total else None)
        done = sum(b for b, _ in parts.values())
        if done > limits.max_bytes:
            raise _Abort(too_large(limits.max_bytes))
        totals = [t for _, t in parts.values()]
        progress(done, sum(t for t in totals if t) if all(totals) else None)

    logger = _YdlLogger()
    with fenced(proxy_port), yt_dlp.YoutubeDL(ytdlp_options(workdir, proxy_url, limits, hook, logger)) as ydl:
        info = ydl.extract_info(url, download=True)
    if logger.over_limit:
        raise too_large(limits.max_bytes)
    if not info or info.get("_type") in ("playlist", "multi_video"):
        raise FetchFailed("the URL is a playlist; submit the link of one video")
    downloads = info.get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if path is None or not path.is_file():
        raise FetchFailed("yt-dlp found no downloadable video at this URL")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise too_large(limits.max_bytes)
    return Fetched(path, size, str(info.get("title") or ""))


async def fetch_with_ytdlp(url: str, workdir: Path, policy: UrlPolicy, limits: FetchLimits, progress: ProgressFn,
                           resolver: AbstractResolver | None = None,
                           on_proxy: Callable[[PolicyProxy], None] | None = None,
                           pool: concurrent.futures.Executor | None = None) -> Fetched:
    """Fetch a site link with yt-dlp into ``workdir``, every connection through the policy proxy.

    yt-dlp blocks a thread for the whole download: ``pool`` is the gateway's own bounded pool
    for it, so downloads never take the event loop's default pool (name lookups, hashing).
    """
    import yt_dlp.utils

    deadline = time.monotonic() + limits.total_timeout_s
    proxy = PolicyProxy(policy, max_bytes=limits.max_bytes + 1024 * 1024, connect_timeout_s=limits.connect_timeout_s,
                        idle_timeout_s=limits.read_timeout_s, deadline=deadline, resolver=resolver)
    proxy_url = await proxy.start()
    if on_proxy is not None:
        on_proxy(proxy)
    cancel = threading.Event()
    loop = asyncio.get_running_loop()
    worker = asyncio.ensure_future(loop.run_in_executor(
        pool, functools.partial(_run_ytdlp, url, workdir, proxy_url, proxy.port, limits, progress, cancel, deadline)))
    try:
        return await asyncio.shield(worker)
    except _Abort as exc:
        raise exc.reason from None
    except (yt_dlp.utils.DownloadError, yt_dlp.utils.YoutubeDLError) as exc:
        if proxy.refusals:
            raise UrlRefused(proxy.refusals[0]) from None
        if proxy.over_budget:
            raise too_large(limits.max_bytes) from None
        raise FetchFailed(_clean(str(exc))) from None
    except asyncio.CancelledError:
        cancel.set()  # the thread stops at its next progress hook; the proxy cuts its connections now
        raise
    finally:
        await proxy.close()
        if not worker.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(worker), 30)

"""A loopback forward proxy that applies the URL policy to yt-dlp's traffic.

yt-dlp is given ``proxy=http://clipora:<token>@127.0.0.1:<port>`` and every request handler it
has (urllib, requests, websockets, curl_cffi) sends its connections here. For ``CONNECT
host:port`` (https) and for absolute-form ``GET http://…`` requests the proxy checks the
destination with :class:`~http_gateway.url_policy.UrlPolicy`, resolves a name once, checks every
address, and connects to a checked IP (never re-resolving); anything else gets a 4xx and is
recorded in :attr:`PolicyProxy.refusals`, so the job can fail with the reason. It also
enforces the download's byte budget, idle timeout and deadline on the wire, whatever the
client does. One proxy serves one download and listens only on 127.0.0.1 behind a random
credential.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import secrets
import time

from aiohttp.abc import AbstractResolver

from http_gateway.url_policy import Pins, UrlPolicy, UrlRefused, resolve_checked

log = logging.getLogger("clipora.fetch_proxy")

MAX_HEAD = 32 * 1024
CHUNK = 64 * 1024
HOP_HEADERS = {b"proxy-authorization", b"proxy-connection", b"connection", b"keep-alive"}


class PolicyProxy:
    def __init__(self, policy: UrlPolicy, *, max_bytes: int, connect_timeout_s: float, idle_timeout_s: float,
                 deadline: float, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.max_bytes = max_bytes
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.deadline = deadline  # time.monotonic() after which every connection is cut
        self.resolver = resolver
        self.pins = Pins()
        self.refusals: list[str] = []
        self.requests = 0  # connections it forwarded (tests check yt-dlp really came this way)
        self.bytes_in = 0
        self.over_budget = False
        self._token = secrets.token_urlsafe(18)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://clipora:{self._token}@127.0.0.1:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            await asyncio.wait(self._conns, timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    # -- one client connection ---------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.connect_timeout_s)
            lines = head.split(b"\r\n")
            method, target, _version = lines[0].decode("latin-1").split(" ", 2)
            headers = [line for line in lines[1:] if line]
            if not self._authorized(headers):
                await self._reply(writer, 407, "proxy authentication required",
                                  extra=b"Proxy-Authenticate: Basic realm=\"clipora\"\r\n")
                return
            try:
                if method.upper() == "CONNECT":
                    checked = self.policy.check_authority(target)
                else:
                    checked = self.policy.check_url(target)
                    if checked.scheme != "http":
                        raise UrlRefused("URL refused: https must be tunnelled with CONNECT")
                up_reader, upstream = await self._connect(checked)
            except UrlRefused as exc:
                self.refusals.append(exc.message)
                await self._reply(writer, 403, exc.message)
                return
            except (OSError, TimeoutError) as exc:
                await self._reply(writer, 502, f"could not connect to {target}: {type(exc).__name__}")
                return
            self.requests += 1
            if method.upper() == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                # origin-form request line, no proxy headers, one request per connection: a second
                # request on this socket could only reach the same checked address anyway
                path = checked.url.raw_path_qs or "/"
                kept = [h for h in headers if h.split(b":", 1)[0].strip().lower() not in HOP_HEADERS]
                upstream.write(f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
                               + b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n")
            await writer.drain()
            await self._splice(reader, writer, up_reader, upstream)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            with contextlib.suppress(Exception):
                await self._reply(writer, 400, "bad proxy request")
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for w in (upstream, writer):
                if w is not None:
                    w.close()
            self._conns.discard(task)

    def _authorized(self, headers: list[bytes]) -> bool:
        expected = b"Basic " + base64.b64encode(f"clipora:{self._token}".encode())
        for line in headers:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"proxy-authorization" and hmac.compare_digest(value.strip(), expected):
                return True
        return False

    async def _connect(self, checked) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        addresses = await resolve_checked(self.policy, checked, self.pins, self.resolver)
        last: BaseException = OSError("no address")
        for ip in addresses:  # only checked addresses, as IP literals: nothing is resolved again
            try:
                return await asyncio.wait_for(asyncio.open_connection(str(ip), checked.port, limit=CHUNK),
                                              self.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                last = exc
        raise last

    async def _splice(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter,
                      u_reader: asyncio.StreamReader, u_writer: asyncio.StreamWriter) -> None:
        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, counted: bool) -> None:
            while True:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    return
                # only the download direction idles out: a client waiting for a response sends nothing
                chunk = await asyncio.wait_for(src.read(CHUNK), min(self.idle_timeout_s, left) if counted else left)
                if not chunk:
                    return
                if counted:
                    self.bytes_in += len(chunk)
                    if self.bytes_in > self.max_bytes:
                        self.over_budget = True
                        return
                dst.write(chunk)
                await dst.drain()

        tasks = [asyncio.create_task(pump(c_reader, u_writer, False)),
                 asyncio.create_task(pump(u_reader, c_writer, True))]
        try:
            # the download direction decides when the exchange is over
            await asyncio.wait({tasks[1]})
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, message: str, extra: bytes = b"") -> None:
        reason = {400: "Bad Request", 403: "Forbidden", 407: "Proxy Authentication Required",
                  502: "Bad Gateway"}[status]
        body = message.encode("utf-8", "replace")
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode() + extra + b"\r\n" + body)
        with contextlib.suppress(Exception):
            await writer.drain()

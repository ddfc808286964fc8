"""The fetchers in-process against the loopback media server: direct links, redirects, limits,
timeouts, DNS rebinding, and yt-dlp behind the policy proxy (and its fence)."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import aiohttp
import pytest

from http_gateway.fetch_proxy import PolicyProxy
from http_gateway.url_fetch import FetchFailed, FetchLimits, fenced, fetch_direct, fetch_with_ytdlp
from http_gateway.url_policy import Pins, UrlPolicy, UrlRefused, resolve_checked
from tests.http_gateway.media_server import CLIP, MediaServer
from tests.http_gateway.test_url_policy import StubResolver

pytestmark = pytest.mark.timeout(120)

LIMITS = FetchLimits(max_bytes=2 * 1024 * 1024, connect_timeout_s=5, read_timeout_s=1.0, total_timeout_s=60)


@pytest.fixture(scope="module")
def media():
    server = MediaServer(drip_s=8.0).start()
    yield server
    server.stop()


def allow(media: MediaServer) -> UrlPolicy:
    return UrlPolicy(["127.0.0.1"], [80, 443, media.port])


async def test_direct_link_streams_the_file_with_progress(media, tmp_path):
    seen: list[tuple[int, int | None]] = []
    got = await fetch_direct(f"{media.url}/clip.mp4", tmp_path / "a.part", allow(media), LIMITS,
                             lambda done, total: seen.append((done, total)))
    assert got is not None and got.size == CLIP.stat().st_size and got.title == "clip.mp4"
    assert (tmp_path / "a.part").read_bytes() == CLIP.read_bytes()
    assert seen[-1] == (got.size, got.size) and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:], strict=False))


async def test_generic_type_with_a_media_extension_is_media(media, tmp_path):
    got = await fetch_direct(f"{media.url}/download/clip.mov", tmp_path / "a.part", allow(media), LIMITS,
                             lambda *_: None)
    assert got is not None and got.size == CLIP.stat().st_size


async def test_redirect_chain_is_followed_hop_by_hop(media, tmp_path):
    got = await fetch_direct(f"{media.url}/redirect/4", tmp_path / "a.part", allow(media), LIMITS, lambda *_: None)
    assert got is not None and got.size == CLIP.stat().st_size
    paths = [p for p, _ in media.seen]
    assert paths[-5:] == ["/redirect/4", "/redirect/3", "/redirect/2", "/redirect/1", "/clip.mp4"]


async def test_too_many_redirects_fail(media, tmp_path):
    with pytest.raises(FetchFailed, match="too many redirects"):
        await fetch_direct(f"{media.url}/redirect/9", tmp_path / "a.part", allow(media), LIMITS, lambda *_: None)


@pytest.mark.parametrize(("to", "reason"), [
    ("http://127.0.0.2:{port}/clip.mp4", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/clip.mp4", "IPv4-mapped"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[::1]:{port}/clip.mp4", "loopback"),
    ("http://2130706434:{port}/clip.mp4", "loopback"),  # 127.0.0.2 spelled as one number
    ("file:///etc/passwd", "only http and https"),
])
async def test_a_redirect_inside_is_refused(media, tmp_path, to, reason):
    before = len(media.seen)
    with pytest.raises(UrlRefused, match=reason):
        await fetch_direct(f"{media.url}/redirect/2?to={to.format(port=media.port)}", tmp_path / "a.part",
                           allow(media), LIMITS, lambda *_: None)
    assert [p for p, _ in media.seen[before:]] == ["/redirect/2", "/redirect/1"]  # the target was never asked


async def test_404_fails_with_the_status(media, tmp_path):
    with pytest.raises(FetchFailed, match="HTTP 404"):
        await fetch_direct(f"{media.url}/nope.mp4", tmp_path / "a.part", allow(media), LIMITS, lambda *_: None)


@pytest.mark.parametrize("path", ["/big.mp4", "/big-declared.mp4"])
async def test_over_the_limit_stops(media, tmp_path, path):
    with pytest.raises(FetchFailed, match="larger than the limit of 2097152 bytes"):
        await fetch_direct(f"{media.url}{path}", tmp_path / "a.part", allow(media), LIMITS, lambda *_: None)
    part = tmp_path / "a.part"
    assert not part.exists() or part.stat().st_size <= LIMITS.max_bytes


async def test_a_slow_drip_times_out(media, tmp_path):
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(FetchFailed, match="timed out"):
        await fetch_direct(f"{media.url}/drip.mp4", tmp_path / "a.part", allow(media), LIMITS, lambda *_: None)
    assert loop.time() - started < 6.0  # the 1 s read timeout, not the 8 s drip (room for a loaded CI machine)


async def test_default_policy_refuses_the_media_server(media, tmp_path):
    with pytest.raises(UrlRefused, match="port|loopback"):
        await fetch_direct(f"{media.url}/clip.mp4", tmp_path / "a.part", UrlPolicy(), LIMITS, lambda *_: None)


async def test_dns_rebinding_between_check_and_connect_is_refused(media, tmp_path):
    """The name answers a public address at the submit-time check, then loopback: the connect is refused."""
    policy = UrlPolicy(ports=[80, 443, media.port])
    dns = StubResolver([["93.184.216.34"], ["127.0.0.1"]])
    url = f"http://media.test:{media.port}/clip.mp4"
    assert [str(a) for a in await resolve_checked(policy, policy.check_url(url), Pins(), dns)] == ["93.184.216.34"]
    before = len(media.seen)
    with pytest.raises(UrlRefused, match=r"^URL refused: media\.test resolves to a loopback address$"):
        await fetch_direct(url, tmp_path / "a.part", policy, LIMITS, lambda *_: None, resolver=dns)
    assert media.seen[before:] == []  # not one byte reached the loopback server


async def test_the_connection_goes_to_the_checked_address(media, tmp_path):
    dns = StubResolver([["127.0.0.1"]])
    got = await fetch_direct(f"http://media.test:{media.port}/clip.mp4", tmp_path / "a.part", allow(media),
                             LIMITS, lambda *_: None, resolver=dns)
    assert got is not None and media.seen[-1] == ("/clip.mp4", f"media.test:{media.port}")
    assert dns.calls == 1  # resolved once, connected to that answer


async def test_a_page_is_not_media_and_ytdlp_fetches_its_video_through_the_proxy(media, tmp_path):
    assert await fetch_direct(f"{media.url}/page.html", tmp_path / "a.part", allow(media), LIMITS,
                              lambda *_: None) is None
    proxies: list[PolicyProxy] = []
    progress: list[int] = []
    got = await fetch_with_ytdlp(f"{media.url}/page.html", tmp_path, allow(media), LIMITS,
                                 lambda done, _: progress.append(done), on_proxy=proxies.append)
    assert got.path.read_bytes() == CLIP.read_bytes() and got.path.suffix == ".mp4"
    assert got.title.startswith("A talk")
    assert proxies[0].requests >= 2  # the page and the video both went through the policy proxy
    assert progress and progress[-1] == CLIP.stat().st_size


@pytest.mark.parametrize(("src", "reason"), [
    ("http://127.0.0.2:{port}/clip.mp4", "127.0.0.2 is a loopback address"),
    ("http://169.254.169.254/latest/x.mp4", "cloud metadata"),
    ("http://10.0.0.1/x.mp4", "private"),
])
async def test_a_page_whose_video_points_inside_is_refused(media, tmp_path, src, reason):
    with pytest.raises(UrlRefused, match=reason):
        await fetch_with_ytdlp(f"{media.url}/page.html?src={src.format(port=media.port)}", tmp_path,
                               allow(media), LIMITS, lambda *_: None)
    assert not list(tmp_path.glob("media.*"))


@pytest.mark.parametrize(("src", "limit"), [("/clip.mp4", 50_000), ("/big.mp4", 1_000_000)])
async def test_ytdlp_stops_at_the_size_limit(media, tmp_path, src, limit):
    """Declared too large (skipped before a byte) or counted past the limit (chunked, no length)."""
    small = FetchLimits(max_bytes=limit, connect_timeout_s=5, read_timeout_s=2, total_timeout_s=60)
    with pytest.raises(FetchFailed, match=f"larger than the limit of {limit} bytes"):
        await fetch_with_ytdlp(f"{media.url}/page.html?src={src}", tmp_path, allow(media), small, lambda *_: None)


async def test_the_proxy_wants_its_credential_and_refuses_inside_targets(media):
    proxy = PolicyProxy(allow(media), max_bytes=10**6, connect_timeout_s=2, idle_timeout_s=2,
                        deadline=asyncio.get_running_loop().time() + 60)
    url = await proxy.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{media.url}/clip.mp4", proxy=f"http://127.0.0.1:{proxy.port}") as r:
                assert r.status == 407
            async with s.get(f"http://127.0.0.2:{media.port}/clip.mp4", proxy=url) as r:
                assert r.status == 403 and "loopback" in await r.text()
            async with s.get(f"{media.url}/clip.mp4", proxy=url) as r:
                assert r.status == 200 and await r.read() == CLIP.read_bytes()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        auth = url.split("//", 1)[1].split("@", 1)[0]
        import base64
        token = base64.b64encode(auth.encode()).decode()
        writer.write(f"CONNECT 169.254.169.254:443 HTTP/1.1\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode())
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 403")
        writer.close()
        assert any("metadata" in r for r in proxy.refusals)
    finally:
        await proxy.close()


def test_the_fence_stops_direct_connections_from_the_ytdlp_thread(media):
    errors: list[BaseException] = []

    def fenced_work() -> None:
        with fenced(1):  # only 127.0.0.1:1 (the "proxy") may be reached
            for target in (("127.0.0.1", media.port),):
                try:
                    socket.create_connection(target, timeout=2).close()
                except PermissionError as exc:
                    errors.append(exc)
            try:
                socket.getaddrinfo("example.com", 80)
            except PermissionError as exc:
                errors.append(exc)

    t = threading.Thread(target=fenced_work)
    t.start()
    t.join()
    assert len(errors) == 2
    socket.create_connection(("127.0.0.1", media.port), timeout=2).close()  # other threads are not fenced


def test_ytdlp_output_never_leaves_its_workdir(tmp_path: Path):
    from http_gateway.url_fetch import ytdlp_options

    opts = ytdlp_options(tmp_path, "http://x:y@127.0.0.1:1", LIMITS, lambda d: None)
    assert opts["paths"] == {"home": str(tmp_path), "temp": str(tmp_path)}
    assert opts["outtmpl"]["default"] == "media.%(ext)s"  # the site's title never becomes a path
    assert opts["external_downloader"] == {"default": "native"} and opts["proxy"].startswith("http://")
    assert "-protocol_whitelist" in opts["postprocessor_args"]["merger+ffmpeg_i"]

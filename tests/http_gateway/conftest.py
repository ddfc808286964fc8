"""Live-server fixtures: the real ``clipora serve`` as a subprocess on loopback.

``LiveServer`` starts ``python -m clipora serve --port <free> --data-dir <tmp>`` with extra
``CLIPORA_*`` variables, waits for /readyz, and can stop it politely (SIGTERM) or kill -9 it.
Helpers sign users up and create API keys over HTTP, as a client would. ``private_pg``: a PostgreSQL
server of the test's own (initdb into a temporary folder, a free port), for gateways sharing a
database (a test may stop and start it without disturbing the other suites).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-7"
# options that keep a job to a few seconds on two shared cores
FAST_OPTIONS = '{"mode":"none","trimEnd":2,"captionPreset":"none","aspectRatio":"1:1"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, data_dir: Path, cache_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.extra_env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> LiveServer:
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(self.cache_dir), CLIPORA_THREADS="2",
                   **self.extra_env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clipora", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir.parent)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no cleanup at all, as in a crash
            self.proc.wait(timeout=10)

    def rss_peak_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")


@pytest.fixture(scope="session")
def server_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, server_cache: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("live") / "data", server_cache).start()
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path: Path, server_cache: Path) -> Iterator[Any]:
    """A factory for servers with their own settings; all are stopped at the end of the test."""
    started: list[LiveServer] = []

    def start(env: dict[str, str] | None = None, data_dir: Path | None = None) -> LiveServer:
        server = LiveServer(data_dir or tmp_path / f"data{len(started)}", server_cache, env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def _pg_bin() -> Path | None:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "initdb").exists() and (root / "pg_ctl").exists():
            return root
    return None


@dataclass
class PrivatePostgres:
    bindir: Path
    data: Path
    port: int
    user: str | None  # run the server as this user (root may not)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/clipora"

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def pg_ctl(self, action: str, *extra: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.data.parent / "pg.log"),
                  "-o", f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1", action, *extra)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's server binaries are missing (.ci/run installs postgresql)")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    # not under pytest's own temporary folder: the server's user must be able to reach it
    folder = Path(tempfile.mkdtemp(prefix="clipora-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(folder, user)
    pg = PrivatePostgres(bindir, folder / "data", free_port(), user)
    pg._run("initdb", "-D", str(pg.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    pg.pg_ctl("start")
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-qc", "create database clipora"],
                   check=True, timeout=30)
    try:
        yield pg
    finally:
        pg.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Account:
    email: str
    key: str
    cookies: dict[str, str]
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


async def signup(session: aiohttp.ClientSession, base: str, email: str) -> tuple[dict[str, str], str]:
    """Signs up over HTTP; returns (the session cookie, the CSRF token)."""
    async with session.post(f"{base}/api/auth/signup", json={"email": email, "password": PASSWORD},
                            headers={"Origin": base}) as r:
        assert r.status == 201, await r.text()
        body = await r.json()
        return {"reels_session": r.cookies["reels_session"].value}, body["csrfToken"]


async def create_key(session: aiohttp.ClientSession, base: str, cookies: dict[str, str], name: str = "test") -> str:
    async with session.post(f"{base}/api/keys", json={"name": name}, cookies=cookies,
                            headers={"Origin": base}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["key"])


async def new_account(base: str, email: str) -> Account:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        cookies, csrf = await signup(session, base, email)
        key = await create_key(session, base, cookies)
    return Account(email, key, cookies, csrf)


async def upload(base: str, key: str, path: Path, options: str | None = FAST_OPTIONS,
                 filename: str | None = None) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("video", path.read_bytes(), filename=filename or path.name, content_type="video/mp4")
    if options is not None:
        form.add_field("options", options)
    async with aiohttp.ClientSession() as session, session.post(
            f"{base}/api/upload", data=form, headers={"X-API-Key": key}) as r:
        return r.status, await r.json()


async def wait_for_job(base: str, key: str, job_id: str, timeout_s: float = 120.0,
                       until: tuple[str, ...] = ("completed", "failed")) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{base}/api/jobs/{job_id}", headers={"X-API-Key": key}) as r:
                assert r.status == 200, await r.text()
                job = await r.json()
            if job["status"] in until:
                return dict(job)
            if time.monotonic() > deadline:
                raise AssertionError(f"job still {job['status']} after {timeout_s} s: {job}")
            await asyncio.sleep(0.25)


async def job_status(base: str, key: str, job_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/api/jobs/{job_id}", headers={"X-API-Key": key}) as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


async def watch_job(base: str, key: str, job_id: str, into: list[dict[str, Any]]) -> None:
    """A WebSocket client: appends every message until the job ends or the socket closes."""
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/ws?jobId={job_id}",
                                                          headers={"X-API-Key": key}, heartbeat=2.0) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            into.append(msg.json())
            if into[-1]["type"] in ("completed", "failed"):
                return

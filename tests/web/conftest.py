"""Browser fixtures: Debian's Chromium (/usr/bin/chromium) driven by Playwright, against the
real ``clipora serve`` started by tests/http_gateway's LiveServer. Nothing downloads a browser.

Every page gets a console watcher: console errors and uncaught exceptions are collected and
the tests assert there are none. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.http_gateway.conftest import LiveServer, server_cache  # noqa: F401  (server_cache: a fixture)

CHROMIUM = Path(os.environ.get("CLIPORA_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Console:
    """What a page said on its console: errors (console.error + uncaught exceptions) and the rest."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda msg: self.errors.append(f"console.{msg.type}: {msg.text} @ {msg.location}")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: the sync API keeps its event loop current in this thread while it runs, so it
    must be stopped before a module of asyncio tests (test_pages.py) starts."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; `make install` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, server_cache: Path) -> Iterator[LiveServer]:  # noqa: F811
    server = LiveServer(tmp_path_factory.mktemp("web") / "data", server_cache).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def shoot(page: Any, artifacts: Path, name: str) -> None:
    """A full-page screenshot from the top (the sticky header would otherwise sit mid-page)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)

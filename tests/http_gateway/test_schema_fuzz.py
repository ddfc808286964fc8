"""Schemathesis over the served ``/api/openapi.json`` (gateway hardening issue, item 10).

The real ``clipora serve`` is fuzzed through its own OpenAPI document, once with an API key and
once with a browser session (cookie + Origin), every operation, every check schemathesis has
(``--checks all``: no 5xx, no status, header, content type or body the document does not
describe, invalid input refused, valid input accepted, auth not ignored, ...). Generated uploads
are small generated files. A real completed job's id is supplied as ``jobId`` (and its clip as
``index``) so the job, clip, re-render and WebSocket routes are reached past their 404s.

Seeded and bounded (``-n`` examples per operation), so a run takes well under a minute on two
cores and fails the same way twice. Where the document cannot say what the server checks,
``expected-statuses`` admits the 400 (each case names why); nothing else is relaxed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http_gateway.conftest import LiveServer, new_account, upload, wait_for_job

VIDEO = Path(__file__).resolve().parents[1] / "media" / "face_static.mp4"
EXAMPLES = 25
SEED = 20261201

pytestmark = pytest.mark.timeout(600)

#: schema-valid requests the server refuses for reasons JSON Schema cannot state
SEMANTIC_400 = {
    "/api/upload": "the video is judged by probing its content (a generated PNG is not a video)",
    "/api/upload/url": "the URL must resolve to a public address, which is decided by DNS at submit",
    "/api/auth/signup": "passwords must mix two character classes and emails must be deliverable",
    "/ws": "OpenAPI cannot describe the WebSocket handshake: a plain GET is refused (400, upgrade required)",
    "/api/webhooks": "the receiver's URL must resolve to a public address, which is decided by DNS",
    "/api/keys": "names must be printable (str.isprintable), which no pattern in the document expresses",
    "/api/fonts": "an uploaded font is judged by parsing its content (a generated file is not a TrueType font)",
    "/api/styles": "style.font must name one of the account's uploaded fonts, and names must be printable",
    "/api/styles/{styleId}": "style.font must name one of the account's uploaded fonts, and names must be printable",
    "/api/clips/{jobId}/{index}/render": "an edit must change the clip, its window lie in the job's span and its "
                                         "words' indices in the job's transcript: facts of the job, not the schema",
}


def _config(tmp_path: Path, *, scheme: str, credential: str, origin: str, job_id: str) -> Path:
    lines = [
        f"seed = {SEED}",
        f'headers = {{ Origin = "{origin}" }}',  # same-origin, as a browser sends for the session's writes
        "[parameters]",
        f'jobId = "{job_id}"',
        "index = 1",  # the job's one clip (the clip editor and re-render routes)
        f"[auth.openapi.{scheme}]",
        f'api_key = "{credential}"',
    ]
    for path, why in SEMANTIC_400.items():
        lines += [f"# {why}", "[[operations]]", f'include-path = "{path}"',
                  "checks.positive_data_acceptance.expected-statuses = "
                  '["2xx", "400", "401", "403", "404", "409", "429"]']
    config = tmp_path / f"schemathesis-{scheme}.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture(scope="module")
def served(live_server: LiveServer) -> Iterator[tuple[LiveServer, object, str]]:
    import asyncio

    async def prepare():
        account = await new_account(live_server.url, "fuzz@example.com")
        status, body = await upload(live_server.url, account.key, VIDEO)
        assert status == 200, body
        job = await wait_for_job(live_server.url, account.key, body["jobId"], timeout_s=120)
        assert job["status"] == "completed", job
        return account, job["id"]

    account, job_id = asyncio.run(prepare())
    yield live_server, account, job_id


@pytest.mark.parametrize("scheme", ["apiKey", "session"])
def test_the_served_openapi_document_holds_under_fuzzing(served, scheme, tmp_path):
    server, account, job_id = served
    credential = account.key if scheme == "apiKey" else account.cookies["reels_session"]
    config = _config(tmp_path, scheme=scheme, credential=credential, origin=server.url, job_id=job_id)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               f"{server.url}/api/openapi.json", "--checks", "all", "-n", str(EXAMPLES), "--workers", "1",
               "--no-color", "--report", "junit", "--report-dir", str(tmp_path / "report")]
    if scheme == "session":
        command += ["--exclude-path", "/api/auth/logout"]  # it would end the session under test
    result = subprocess.run(command, capture_output=True, text=True, timeout=420, cwd=tmp_path,
                            env=dict(os.environ, SCHEMATHESIS_HOOKS=""))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    # every selected operation was exercised, and the selection is the document (less logout for the
    # session; schemathesis counts one operation fewer than the document lists, as it always has)
    from http_gateway.openapi import build_document

    operations = sum(len(ops) for ops in build_document()["paths"].values())
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-3000:]
    assert int(tested[1]) == int(selected[1]) == int(selected[2]) - (1 if scheme == "session" else 0), output[-3000:]
    assert int(selected[2]) >= operations - 1, (selected[0], operations)
    lines = [line.strip() for line in output.splitlines()]
    cases = lines[lines.index("Test cases:") + 1] if "Test cases:" in lines else "?"  # "N generated, ..."
    print(f"\nschemathesis ({scheme}): {cases}")  # the reliability table in BENCHMARKS.md quotes this

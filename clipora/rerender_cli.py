"""``clipora rerender JOB INDEX [edits]``: render a clip of a finished job again, on a running Clipora.

The edit goes to ``POST /api/clips/{job}/{index}/render`` (the same body the web editor sends); the
render's progress is followed on the job's record until it ends; with ``-o`` the new version's
MP4 is downloaded (written whole or not at all). The server and key come from ``--server-url`` /
``CLIPORA_SERVER_URL`` and ``--api-key`` / ``CLIPORA_API_KEY`` (the variable keeps the key out of ps).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from engine.edits import ClipEdit
from engine.errors import ClipporaError
from engine.storage import atomic_path

POLL_S = 0.5


def add_parser(sub: Any) -> None:
    r = sub.add_parser("rerender", help="render a clip of a finished job again with edits, on a running Clipora")
    r.add_argument("job", help="the job's id")
    r.add_argument("index", type=int, help="the clip's number (1 = clip_01)")
    r.add_argument("--start", type=float, help="new start, source seconds (snapped so no word is cut)")
    r.add_argument("--end", type=float, help="new end, source seconds")
    r.add_argument("--word", action="append", default=[], metavar="INDEX=TEXT",
                   help="correct a word: its index in the job's transcript (GET /api/clips/JOB/N/edit lists them) "
                        "and the text to show; repeatable")
    r.add_argument("--caption-preset", help="none | beasty | karaoke | mozi")
    r.add_argument("--caption-emphasis", help="auto | none")
    r.add_argument("--caption-emoji", action=argparse.BooleanOptionalAction, default=None)
    r.add_argument("--aspect-ratio", help="9:16 | 1:1 | 4:5 | 16:9")
    r.add_argument("--layout", help="auto | follow | split")
    r.add_argument("--remove-silence", action=argparse.BooleanOptionalAction, default=None)
    r.add_argument("--silence-threshold", type=float, help="seconds (0.2-10)")
    r.add_argument("--remove-fillers", action=argparse.BooleanOptionalAction, default=None)
    r.add_argument("-o", "--output", type=Path, help="download the new version's MP4 here")
    r.add_argument("--no-wait", action="store_true", help="queue the render and print its job id")
    r.add_argument("--server-url", help="a running Clipora's address (CLIPORA_SERVER_URL)")
    r.add_argument("--api-key", help="an API key of that server (CLIPORA_API_KEY)")
    r.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the render (default 1800)")


def edit_from_args(args: argparse.Namespace) -> ClipEdit:
    """The edit the flags describe, validated like the API's body (InvalidOptions naming the field)."""
    words = []
    for item in args.word:
        index, sep, text = item.partition("=")
        if not sep or not index.strip().isdigit():
            raise ClipporaError(f"--word takes INDEX=TEXT (e.g. --word 12=Zebra), not {item!r}")
        words.append({"index": int(index), "text": text})
    body: dict[str, Any] = {"start": args.start, "end": args.end, "captionPreset": args.caption_preset,
                            "captionEmphasis": args.caption_emphasis, "captionEmoji": args.caption_emoji,
                            "aspectRatio": args.aspect_ratio, "layout": args.layout,
                            "removeSilence": args.remove_silence, "silenceThreshold": args.silence_threshold,
                            "removeFillers": args.remove_fillers}
    body = {k: v for k, v in body.items() if v is not None}
    if words:
        body["words"] = words
    edit = ClipEdit.from_json(body)
    if edit.empty:
        raise ClipporaError("nothing to change: give --start/--end, --word, --caption-preset, --caption-emphasis, "
                            "--caption-emoji, --aspect-ratio, --layout, --remove-silence or --remove-fillers")
    return edit


def _error(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error") or r.text)
    except ValueError:
        return r.text or f"HTTP {r.status_code}"


def run(args: argparse.Namespace, client: httpx.Client | None = None) -> int:
    err, out = Console(stderr=True), Console()
    server = (args.server_url or os.environ.get("CLIPORA_SERVER_URL") or "").rstrip("/")
    key = args.api_key or os.environ.get("CLIPORA_API_KEY") or ""
    try:
        if not server or not key:
            raise ClipporaError("a server and an API key are needed: --server-url / CLIPORA_SERVER_URL and "
                                "--api-key / CLIPORA_API_KEY")
        edit = edit_from_args(args)
        http = client or httpx.Client(base_url=server, headers={"X-API-Key": key}, timeout=30.0)
        with http:
            r = http.post(f"/api/clips/{args.job}/{args.index}/render", json=edit.to_json())
            if r.status_code != 200:
                raise ClipporaError(f"the server refused the render ({r.status_code}): {_error(r)}")
            render = r.json()
            err.print(f"render {render['jobId']} queued for clip {args.index} of {args.job}")
            if args.no_wait:
                out.print(render["jobId"])
                return 0
            job = _follow(http, render["jobId"], args.timeout, err)
            if job["status"] != "completed":
                raise ClipporaError(f"the render failed: {job.get('error') or job.get('message')}")
            m = http.get(f"/api/clips/{args.job}")
            clip = next(c for c in m.json()["clips"] if c["index"] == args.index)
            out.print(f"clip {args.index} is now version {clip.get('version', 1)}: {clip['start']:.2f}-"
                      f"{clip['end']:.2f} s, {clip['duration']:.2f} s -> {server}{clip['downloadUrl']}")
            if args.output:
                _download(http, clip["downloadUrl"], args.output)
                out.print(f"saved {args.output}")
    except ClipporaError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        return 2
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/] cannot reach {server}: {exc}")
        return 2
    return 0


def _follow(http: httpx.Client, job_id: str, timeout_s: float, err: Console) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    shown = ""
    with err.status("waiting for the render") as status:
        while True:
            r = http.get(f"/api/jobs/{job_id}")
            if r.status_code != 200:
                raise ClipporaError(f"cannot follow the render ({r.status_code}): {_error(r)}")
            job = r.json()
            stage, message = job.get("stage") or "", job.get("message") or ""
            line = f"{job['status']} · {stage} {job['progress'] * 100:.0f} % {message}"
            if line != shown:
                status.update(line)
                shown = line
            if job["status"] in ("completed", "failed"):
                return dict(job)
            if time.monotonic() > deadline:
                raise ClipporaError(f"the render is still {job['status']} after {timeout_s:g} s (job {job_id})")
            time.sleep(POLL_S)


def _download(http: httpx.Client, url: str, dest: Path) -> None:
    with atomic_path(dest) as tmp, http.stream("GET", url) as r:
        if r.status_code != 200:
            raise ClipporaError(f"cannot download the clip ({r.status_code})")
        with tmp.open("wb") as fh:
            for chunk in r.iter_bytes():
                fh.write(chunk)

"""The ``clipora`` command line.

    clipora process INPUT -o OUTDIR [options]       one video, on this machine, no server
    clipora serve [--host] [--port] [--data-dir]    the HTTP API (http_gateway) and its worker processes
    clipora worker [--data-dir]                     one worker process on its own (leases jobs from the store)
    clipora users create --email E [--password P]   an account (prompts for the password)
    clipora users set-plan EMAIL PLAN               an account's plan (free|creator|business|default)
    clipora keys create --email E --name N          an API key; the plaintext is printed once
    clipora mcp [--server-url U --api-key K]        an MCP server on stdio (a running Clipora, or jobs here)
    clipora rerender JOB N [edits] [-o FILE]        render clip N of a finished job again (a running Clipora)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.backends import BACKEND_NAMES
from engine.config import Settings
from engine.errors import ClipporaError
from engine.events import EventBus, JobEvent
from engine.options import ProcessOptions

STAGE_LABELS = {
    "probe": "Probing source",
    "audio": "Extracting audio",
    "transcribe": "Transcribing",
    "diarize": "Telling speakers apart",
    "host": "Finding the host",
    "highlights": "Finding moments",
    "faces": "Detecting faces",
    "reframe": "Planning camera",
    "captions": "Building captions",
    "render": "Rendering",
    "poster": "Poster",
    "manifest": "Manifest",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipora", description="Long video in, short clips out.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("process", help="turn one video into clips on this machine (no server)")
    p.add_argument("input", type=Path, help="source video (MP4, MOV, MKV or WEBM)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for clips + manifest.json")
    p.add_argument("--mode", help='"ai" (pick moments, default) or "none" (one clip of the whole)')
    p.add_argument("--num-clips", help="clips to generate, 1-10 (default 3)")
    p.add_argument("--clip-length", help="short 3-15 s | medium 20-45 s (default) | long 45-90 s")
    p.add_argument("--aspect-ratio", help="9:16 (default) | 1:1 | 4:5 | 16:9")
    p.add_argument("--caption-preset", help="none (default) | beasty | karaoke | mozi")
    p.add_argument("--caption-emphasis", help="auto (default: beasty and mozi colour and pop about one key word "
                   "per caption) | none")
    p.add_argument("--caption-emoji", action=argparse.BooleanOptionalAction, default=None,
                   help="an emoji above a caption whose word has one (money, fire, idea, …), at most every 3 s")
    p.add_argument("--caption-style", type=_json_object, metavar="JSON",
                   help='a brand style over the preset, e.g. \'{"font":"poppins-extrabold","textColor":"#FFD60A",'
                        '"position":0.3}\' (captionStyle: font, size, textColor, highlightColor, outlineColor, '
                        'outlineWidth, uppercase, wordsPerGroup, position)')
    p.add_argument("--prompt", help="what to focus on, e.g. 'moments about hiring'")
    p.add_argument("--genre", help="auto (default) | podcast | interview | vlog | tutorial")
    p.add_argument("--trim-start", help="ignore the source before this many seconds")
    p.add_argument("--trim-end", help="ignore the source after this many seconds")
    p.add_argument("--remove-ai-voice", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--auto-hook", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--remove-silence", action=argparse.BooleanOptionalAction, default=None,
                   help="shorten pauses longer than --silence-threshold (default off)")
    p.add_argument("--silence-threshold", help="seconds; longer pauses are shortened (default 0.6)")
    p.add_argument("--remove-fillers", action=argparse.BooleanOptionalAction, default=None,
                   help='cut "um", "uh" and stand-alone "you know", "like", "I mean" (default off)')
    p.add_argument("--language", help="auto (default: detected by a multilingual model, else English) or an ISO "
                   "639-1 code, e.g. es, de, ru (other languages than English need CLIPORA_WHISPER_MODEL=base)")
    p.add_argument("--layout", help="auto (default) | follow (crop on the active speaker) | split (9:16: two "
                   "speakers stacked)")
    p.add_argument("--webhook-url", help="POST a signed job.completed / job.failed event here when the job ends "
                   "(Standard Webhooks; tried for about a minute)")
    p.add_argument("--webhook-secret", help="whsec_… to sign it with (CLIPORA_WEBHOOK_SECRET; made and printed "
                   "once when neither is set)")
    p.add_argument("--backend", choices=BACKEND_NAMES, help="compute backend (default: auto)")
    p.add_argument("--whisper-model", help="tiny.en (default, English only), base (multilingual; installed by "
                   "make install) or a local CTranslate2 Whisper model directory")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_server_commands(sub)
    m = sub.add_parser("mcp", help="an MCP server on stdin/stdout for a local agent: over a running Clipora "
                       "(--server-url + --api-key) or, without them, running jobs on this machine")
    m.add_argument("--server-url", help="a running Clipora's address (CLIPORA_SERVER_URL), e.g. https://clips.example.com")
    m.add_argument("--api-key", help="an API key of that server (CLIPORA_API_KEY; the variable keeps it out of ps)")
    m.add_argument("--data-dir", type=Path, help="without a server: the job store and job folders "
                   "(CLIPORA_DATA_DIR, default ./data; not one a running `clipora serve` uses)")
    return parser


def _add_server_commands(sub: Any) -> None:
    from clipora import rerender_cli

    rerender_cli.add_parser(sub)
    s = sub.add_parser("serve", help="serve the HTTP API (settings from CLIPORA_* variables)")
    s.add_argument("--host", help="interface to listen on (CLIPORA_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="TCP port (CLIPORA_PORT, default 8080)")
    s.add_argument("--data-dir", type=Path,
                   help="database, uploads and jobs (CLIPORA_DATA_DIR, default ./data)")
    w = sub.add_parser("worker", help="run one worker process: lease jobs from the job store and run them")
    w.add_argument("--data-dir", type=Path, help="as for serve (CLIPORA_DATA_DIR)")
    w.add_argument("--no-migrate", action="store_true", help="the gateway that started it has migrated the database")
    users = sub.add_parser("users", help="manage accounts").add_subparsers(dest="action", required=True)
    u = users.add_parser("create", help="create an account")
    u.add_argument("--email", required=True)
    u.add_argument("--password", help="prompted for when omitted (keeps it out of shell history)")
    u.add_argument("--data-dir", type=Path, help="as for serve (CLIPORA_DATA_DIR)")
    sp = users.add_parser("set-plan", help="put an account on a plan (default: the install's, CLIPORA_DEFAULT_PLAN "
                          "with billing off)")
    sp.add_argument("email")
    sp.add_argument("plan", choices=("free", "creator", "business", "default"))
    sp.add_argument("--data-dir", type=Path, help="as for serve (CLIPORA_DATA_DIR)")
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    k = keys.add_parser("create", help="create an API key for an account; prints the plaintext once")
    k.add_argument("--email", required=True)
    k.add_argument("--name", required=True, help="a label to recognise the key by")
    k.add_argument("--data-dir", type=Path, help="as for serve (CLIPORA_DATA_DIR)")


_OPTION_FLAGS = (
    "mode", "num_clips", "clip_length", "aspect_ratio", "caption_preset", "prompt", "genre",
    "trim_start", "trim_end", "remove_ai_voice", "auto_hook", "layout", "webhook_url", "remove_silence",
    "silence_threshold", "remove_fillers", "language", "caption_emphasis", "caption_emoji", "caption_style",
)


def _json_object(text: str) -> dict[str, Any]:
    """--caption-style's value: a JSON object (its fields are validated with the other options)."""
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object, e.g. '{\"textColor\": \"#FFD60A\"}'")
    return value


def options_from_args(args: argparse.Namespace) -> ProcessOptions:
    return ProcessOptions.build(**{name: getattr(args, name) for name in _OPTION_FLAGS})


class ProgressView:
    """Two rich bars: the whole job and the stage at work."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[message]}"),
            console=console,
            transient=False,
        )
        self.job = self.progress.add_task("Job", total=1.0, message="")
        self.stage = self.progress.add_task("Starting", total=1.0, message="")
        self.current = ""
        self.started = time.monotonic()

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, event: JobEvent) -> None:
        if event.type == "progress":
            self.progress.update(self.job, completed=event.progress)
            label = STAGE_LABELS.get(event.stage, event.stage)
            if event.stage != self.current:
                self._done_line()
                self.current, self.started = event.stage, time.monotonic()
                self.progress.reset(self.stage, total=1.0, description=label)
            self.progress.update(self.stage, completed=event.stage_progress, message=event.message)
        elif event.type == "completed":
            self._done_line()
            self.progress.update(self.job, completed=1.0, message=event.message)
            self.progress.update(self.stage, completed=1.0)
        elif event.type == "failed":
            self.progress.update(self.job, message=f"[red]failed: {event.message}")


    def _done_line(self) -> None:
        # One line per finished stage: visible above the bars, and in logs where no TTY redraws them.
        if self.current:
            label = STAGE_LABELS.get(self.current, self.current)
            self.progress.console.print(f"[green]✓[/] {label} [dim]{time.monotonic() - self.started:.1f} s")


def _summary(console: Console, manifest: dict[str, Any], out_dir: Path) -> None:
    table = Table(title=f"{manifest['clipCount']} clips in {out_dir}")
    for col in ("#", "start", "end", "dur", "score", "title", "hook"):
        table.add_column(col)
    for clip in manifest["clips"]:
        m = clip["metadata"]
        table.add_row(
            f"{clip['index']:02d}", f"{clip['start']:.1f}", f"{clip['end']:.1f}", f"{clip['duration']:.1f}",
            f"{clip['score']:.1f}", m["title"], m["viral_hook"][:60],
        )
    console.print(table)
    for note in manifest.get("notes", []):
        console.print(f"[yellow]note:[/] {note}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "mcp":
        return _mcp(args)
    if args.command == "rerender":
        from clipora import rerender_cli

        return rerender_cli.run(args)
    if args.command != "process":
        return _server_command(args)
    console = Console(stderr=True)
    err = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        options = options_from_args(args)
        settings = Settings.from_env(backend=args.backend, whisper_model=args.whisper_model, threads=args.threads)
        options.check_speech_model(settings.whisper_multilingual)  # a language the model cannot hear: exit 2
        from clipora.compose import run_job  # heavy imports only once the arguments are good

        secret = _webhook_secret(args, err) if options.webhook_url else None
        bus = EventBus()
        try:
            if args.quiet:
                manifest = run_job(args.input, args.output, options, settings, bus=bus)
            else:
                with ProgressView(console) as view:
                    bus.subscribe(view.on_event)
                    manifest = run_job(args.input, args.output, options, settings, bus=bus)
        except ClipporaError as exc:
            if options.webhook_url and secret:
                _notify(err, options.webhook_url, secret, "job.failed", {"status": "failed", "error": exc.message,
                                                                         "source": str(args.input)})
            raise
    except ClipporaError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        return 2
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        return 130
    if not args.quiet:
        _summary(Console(), manifest, args.output)
    if options.webhook_url and secret:
        out = args.output.resolve()
        _notify(err, options.webhook_url, secret, "job.completed", {
            "jobId": manifest.get("jobId"), "status": "completed", "source": str(args.input),
            "clipCount": manifest.get("clipCount"), "manifestUrl": (out / "manifest.json").as_uri(),
            "clips": [{"index": c.get("index"), "duration": c.get("duration"), "score": c.get("score"),
                       "title": (c.get("metadata") or {}).get("title"),
                       "downloadUrl": (out / f"clip_{int(c.get('index', 0)):02d}.mp4").as_uri()}
                      for c in manifest.get("clips", [])]})
    return 0


def _webhook_secret(args: argparse.Namespace, err: Console) -> str:
    import os

    from http_gateway.webhooks import new_secret

    secret = args.webhook_secret or os.environ.get("CLIPORA_WEBHOOK_SECRET", "").strip()
    if not secret:
        secret = new_secret()
        err.print(f"webhook signing secret for this run (set CLIPORA_WEBHOOK_SECRET to reuse one): {secret}")
    return str(secret)


def _notify(err: Console, url: str, secret: str, event_type: str, data: dict[str, Any]) -> None:
    """One signed event to ``url``, tried for about a minute (the CLI has no store to retry from later)."""
    import asyncio

    from http_gateway.config import GatewaySettings
    from http_gateway.url_policy import UrlPolicy
    from http_gateway.webhooks import deliver_once

    gateway = GatewaySettings.from_env()
    outcome = asyncio.run(deliver_once(url, secret, event_type, data, UrlPolicy(gateway.url_allowlist,
                                                                                gateway.url_ports)))
    if outcome.status is not None and 200 <= outcome.status < 300:
        err.print(f"webhook {event_type} delivered to {url} (HTTP {outcome.status})")
    else:
        err.print(f"[yellow]warning:[/] webhook {event_type} not delivered to {url}: {outcome.error}")


# -- the server and its operator commands -------------------------------------------------------

class _LogFormatter(logging.Formatter):
    """One line per record, key=value, with the job id and stage when the record carries them."""

    def format(self, record: logging.LogRecord) -> str:
        line = (f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} level={record.levelname.lower()} "
                f"logger={record.name}")
        for key in ("job_id", "stage"):
            value = getattr(record, key, None)
            if value:
                line += f" {key}={value}"
        line += f" msg={record.getMessage()!r}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _server_command(args: argparse.Namespace) -> int:
    import asyncio

    from http_gateway.config import GatewaySettings

    err = Console(stderr=True)
    try:
        settings = GatewaySettings.from_env(host=getattr(args, "host", None),
                                            port=getattr(args, "port", None), data_dir=args.data_dir)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    if args.command == "serve":
        return _serve(settings)
    if args.command == "worker":
        return _worker(settings, migrate=not args.no_migrate)
    try:
        if args.command == "users" and args.action == "set-plan":
            plan = asyncio.run(_set_plan(settings, args.email, None if args.plan == "default" else args.plan))
            print(f"{args.email} is on the {plan} plan")
        elif args.command == "users":
            password = args.password
            if password is None:
                import getpass

                password = getpass.getpass("Password: ")
                if getpass.getpass("Repeat password: ") != password:
                    err.print("[red]error:[/] the passwords differ")
                    return 2
            user_id = asyncio.run(_create_user(settings, args.email, password))
            print(f"created user {args.email} ({user_id})")
        else:
            plaintext = asyncio.run(_create_key(settings, args.email, args.name))
            err.print("API key created. It is shown only this once; store it now:")
            print(plaintext)
    except Exception as exc:  # the account layer's errors carry a message written for the user
        err.print(f"[red]error:[/] {getattr(exc, 'message', None) or exc}")
        return 2
    return 0


def _mcp(args: argparse.Namespace) -> int:
    """``clipora mcp``: remote with a server URL and key (flags or CLIPORA_SERVER_URL/CLIPORA_API_KEY), else local."""
    import asyncio
    import os

    from clipora import mcp_stdio

    err = Console(stderr=True)
    server_url = args.server_url or os.environ.get("CLIPORA_SERVER_URL", "").strip()
    api_key = args.api_key or os.environ.get("CLIPORA_API_KEY", "").strip()
    if bool(server_url) != bool(api_key):
        err.print("[red]error:[/] --server-url and --api-key go together (or CLIPORA_SERVER_URL and CLIPORA_API_KEY)")
        return 2
    _server_logging()  # to stderr: stdout carries the protocol
    logging.getLogger("mcp").setLevel(logging.WARNING)
    try:
        if server_url:
            asyncio.run(mcp_stdio.serve_remote(server_url, api_key))
        else:
            from http_gateway.config import GatewaySettings

            settings = GatewaySettings.from_env(data_dir=args.data_dir)
            asyncio.run(mcp_stdio.serve_local(settings, Settings.from_env()))
    except ValueError as exc:  # unusable settings: say which
        err.print(f"[red]error:[/] {getattr(exc, 'message', None) or exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _server_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_LogFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _serve(settings: Any) -> int:
    from engine.config import Settings
    from http_gateway.app import create_app
    from http_gateway.server import serve

    _server_logging()
    try:
        if settings.workers > 0:  # jobs run in worker processes; the gateway never decodes a frame
            from stages.moments import build_provider

            build_provider(Settings.from_env())  # unusable provider settings stop the server here
            command = [sys.executable, "-m", "clipora", "worker", "--no-migrate",
                       "--data-dir", str(Path(settings.data_dir).resolve())]
            app = create_app(settings, worker_command=command)
        else:
            from clipora.compose import job_function

            app = create_app(settings, run=job_function(Settings.from_env()))
    except ValueError as exc:  # unusable settings (e.g. the moment provider's): say which, exit 2
        Console(stderr=True).print(f"[red]error:[/] {getattr(exc, 'message', None) or exc}")
        return 2
    logging.getLogger("clipora.gateway").info("serving on http://%s:%d (data in %s)", settings.host,
                                              settings.port, settings.data_dir)
    # SIGTERM/SIGINT: stop accepting, close WebSockets, stop the pipeline (running jobs go back
    # to the queue), then exit
    serve(app, settings.host, settings.port, shutdown_timeout=15.0, access_log_format='%a "%r" %s %b %Tfs')
    return 0


def _worker(settings: Any, migrate: bool = True) -> int:
    import asyncio

    from clipora.compose import StageSet, job_function
    from engine.config import Settings
    from engine.service import JobFolders
    from engine.store import JobStore
    from engine.workers import run_worker
    from http_gateway.app import database_for

    _server_logging()
    engine_settings = Settings.from_env()
    stages = StageSet()
    available = None
    try:
        if settings.executor == "ray":  # the phases run on the cluster: this process loads no model
            from clipora.compose import ray_job_function

            run = ray_job_function(settings.ray_address)
            available = run.available
        else:
            run = job_function(engine_settings, stages)
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/] {getattr(exc, 'message', None) or exc}")
        return 2
    if settings.worker_warm and settings.executor != "ray":
        stages.worker(engine_settings).warm()  # every model loaded before the first job

    async def main() -> None:
        db = database_for(settings)
        try:
            if migrate:
                await db.migrate()
            await run_worker(JobStore(db), run, JobFolders(settings.data_dir).paths_of, settings.executor_config(),
                             nice=settings.worker_nice, memory_mb=settings.worker_memory_mb, available=available)
        finally:
            await db.close()

    asyncio.run(main())
    stages.worker(engine_settings).close()
    return 0


async def _accounts(settings: Any) -> Any:
    from http_gateway.accounts import AccountStore
    from http_gateway.app import database_for

    db = database_for(settings)
    await db.migrate()
    return db, AccountStore(db)


async def _create_user(settings: Any, email: str, password: str) -> str:
    db, store = await _accounts(settings)
    try:
        return str((await store.create_user(email, password)).id)
    finally:
        await db.close()


async def _set_plan(settings: Any, email: str, plan: str | None) -> str:
    from http_gateway.accounts import normalize_email
    from http_gateway.plans import Plans

    db, store = await _accounts(settings)
    try:
        user = await store.user_by_email(normalize_email(email))
        if user is None:
            raise ValueError(f"no account with the email {email}")
        plans = Plans(db, settings.billing, settings.default_plan)
        await plans.set_plan(user.id, plan)
        return (await plans.plan_of(user.id)).name
    finally:
        await db.close()


async def _create_key(settings: Any, email: str, name: str) -> str:
    from http_gateway.accounts import normalize_email
    from http_gateway.plans import Plans

    db, store = await _accounts(settings)
    try:
        user = await store.user_by_email(normalize_email(email))
        if user is None:
            raise ValueError(f"no account with the email {email}")
        plan = Plans(db, settings.billing, settings.default_plan).of(user)
        if not plan.api_access:
            raise ValueError(f"{email} is on the {plan.name} plan, which has no API access (keys need Business; "
                             "clipora users set-plan)")
        name = name.strip()
        if not name or len(name) > 100:
            raise ValueError("name must be 1-100 characters")
        plaintext, _ = await store.create_key(user.id, name)
        return str(plaintext)
    finally:
        await db.close()


if __name__ == "__main__":
    sys.exit(main())

"""GatewaySettings: how the HTTP gateway runs, from ``CLIPORA_*`` environment variables.

Flags of ``clipora serve`` (--host, --port, --data-dir) override the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from engine.service import JobService

GIB = 1024**3


def _bool(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class GatewaySettings:
    #: interface to listen on (CLIPORA_HOST); loopback unless the operator opens it up
    host: str = "127.0.0.1"
    #: TCP port (CLIPORA_PORT)
    port: int = 8080
    #: database, uploads and job folders live here (CLIPORA_DATA_DIR)
    data_dir: Path = Path("./data")
    #: largest accepted upload in bytes, counted by the gateway itself (CLIPORA_MAX_UPLOAD_BYTES)
    max_upload_bytes: int = GIB
    #: SQLAlchemy async URL; empty = SQLite in the data dir (CLIPORA_DATABASE_URL)
    database_url: str = ""
    #: jobs processed at once (CLIPORA_CONCURRENCY)
    concurrency: int = 1
    #: queued jobs accepted before uploads get 503 (CLIPORA_QUEUE_BOUND)
    queue_bound: int = 100
    #: honour X-Forwarded-* headers; only behind a proxy you control (CLIPORA_TRUST_PROXY)
    trust_proxy: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> GatewaySettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        parsers: dict[str, Any] = {
            "host": str, "port": int, "data_dir": Path, "max_upload_bytes": int, "database_url": str,
            "concurrency": int, "queue_bound": int, "trust_proxy": _bool,
        }
        for name, parse in parsers.items():
            raw = env.get(f"CLIPORA_{name.upper()}")
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw.strip())
            except ValueError:
                raise ValueError(f"CLIPORA_{name.upper()} has an invalid value: {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be 1-65535")
        if self.max_upload_bytes < 1:
            raise ValueError("CLIPORA_MAX_UPLOAD_BYTES must be positive")
        if self.concurrency < 1:
            raise ValueError("CLIPORA_CONCURRENCY must be at least 1")
        if self.queue_bound < 0:
            raise ValueError("CLIPORA_QUEUE_BOUND must not be negative")

    def __repr__(self) -> str:  # the database URL may carry a password
        url = "<set>" if self.database_url else "<sqlite in data dir>"
        return (f"GatewaySettings(host={self.host!r}, port={self.port}, data_dir={str(self.data_dir)!r}, "
                f"max_upload_bytes={self.max_upload_bytes}, database_url={url}, "
                f"concurrency={self.concurrency}, queue_bound={self.queue_bound}, "
                f"trust_proxy={self.trust_proxy})")


# The app's shared state. The keys live here, beside the settings, so the app factory and the
# route modules share them without importing each other.
SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("settings", GatewaySettings)
SERVICE: web.AppKey[JobService] = web.AppKey("service")

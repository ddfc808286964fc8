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

from engine.executor import ExecutorConfig
from http_gateway.plans import PLAN_IDS
from http_gateway.proxies import TrustedProxies
from http_gateway.ratelimit import storage_problem

if TYPE_CHECKING:
    from engine.service import JobService

GIB = 1024**3


def _bool(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _words(raw: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in raw.split(",") if w.strip())


def _ports(raw: str) -> tuple[int, ...]:
    return tuple(int(w) for w in _words(raw))


def _floats(raw: str) -> tuple[float, ...]:
    return tuple(float(w) for w in _words(raw))


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
    #: jobs processed at once per worker (CLIPORA_CONCURRENCY)
    concurrency: int = 1
    #: worker processes `clipora serve` starts (CLIPORA_WORKERS); 0 = jobs run in threads of the
    #: gateway's own process
    workers: int = 1
    #: what a worker process runs a leased job on (CLIPORA_EXECUTOR): ``inprocess`` (its own threads) or
    #: ``ray`` (the job's phases as tasks on the Ray cluster at CLIPORA_RAY_ADDRESS, host:port of its GCS)
    executor: str = "inprocess"
    ray_address: str = ""
    #: a worker's lease on a running job and how often it renews it (CLIPORA_LEASE_S, CLIPORA_HEARTBEAT_S):
    #: a job whose worker died is queued again once its lease expires
    lease_s: float = 30.0
    heartbeat_s: float = 10.0
    #: scheduling priority of worker processes (CLIPORA_WORKER_NICE; 0-19): rendering yields to requests
    worker_nice: int = 10
    #: load every model when a worker starts rather than at its first job (CLIPORA_WORKER_WARM)
    worker_warm: bool = True
    #: queued jobs accepted before uploads get 503 (CLIPORA_QUEUE_BOUND)
    queue_bound: int = 100
    #: an account's jobs downloading, queued or running at once (CLIPORA_MAX_JOBS_PER_USER; more: 429)
    max_jobs_per_user: int = 10
    #: address-space ceiling of each worker process in MiB (CLIPORA_WORKER_MEMORY_MB; 0 = none): a job that
    #: needs more fails with that reason instead of taking the machine down
    worker_memory_mb: int = 0
    #: honour X-Forwarded-* headers; only behind a proxy you control (CLIPORA_TRUST_PROXY): one proxy
    trust_proxy: bool = False
    #: the proxies in front (CLIPORA_TRUSTED_PROXIES): how many, or their addresses/CIDRs; see proxies.py
    trusted_proxies: str = ""
    #: destinations POST /api/upload/url may reach although not public: hostnames, *.suffixes, IPs, CIDRs,
    #: comma-separated (CLIPORA_URL_ALLOWLIST); empty = public addresses only
    url_allowlist: tuple[str, ...] = ()
    #: ports a fetched URL may use (CLIPORA_URL_PORTS)
    url_ports: tuple[int, ...] = (80, 443)
    #: URL downloads: seconds to connect, seconds without data, seconds in all (CLIPORA_FETCH_*_TIMEOUT_S)
    fetch_connect_timeout_s: float = 10.0
    fetch_read_timeout_s: float = 30.0
    fetch_total_timeout_s: float = 3600.0
    #: redirects a direct download follows, each hop checked again (CLIPORA_FETCH_MAX_REDIRECTS)
    fetch_max_redirects: int = 5
    #: longest accepted source in seconds, uploads and URLs alike (CLIPORA_MAX_DURATION_S; 4 h)
    max_duration_s: float = 4 * 3600.0
    #: seconds the ingest probe (a child process, killed when late) may take (CLIPORA_PROBE_TIMEOUT_S)
    probe_timeout_s: float = 30.0
    #: URL downloads at once, all users (CLIPORA_MAX_DOWNLOADS; more get 503) and per user
    #: (CLIPORA_MAX_DOWNLOADS_PER_USER; more get 429)
    max_downloads: int = 4
    max_downloads_per_user: int = 2
    #: an upload that sends no byte for this long is dropped and its temporary file removed (408;
    #: CLIPORA_UPLOAD_IDLE_TIMEOUT_S); JSON bodies (auth, keys, URL ingest) must arrive whole within
    #: CLIPORA_BODY_TIMEOUT_S
    upload_idle_timeout_s: float = 60.0
    body_timeout_s: float = 10.0
    #: uploads an account may stream at once (CLIPORA_MAX_UPLOADS_PER_USER; more get 429)
    max_uploads_per_user: int = 4
    #: requests without credentials in flight at once per client IP (CLIPORA_MAX_ANONYMOUS_PER_IP; more
    #: get 429): sign-ups, logins, pages and assets
    max_anonymous_per_ip: int = 32
    #: WebSockets an account may hold open at once (CLIPORA_MAX_SOCKETS_PER_USER; more get 429)
    max_sockets_per_user: int = 50
    #: sign-ups per client IP per hour, each an argon2 hash (CLIPORA_SIGNUPS_PER_IP_PER_HOUR; more get 429)
    signups_per_ip_per_hour: int = 10
    #: where login/sign-up limits are counted (CLIPORA_RATE_LIMIT_STORAGE): memory:// in this process, or
    #: a shared limits storage such as redis://host:6379/0 when several gateways serve one site
    rate_limit_storage: str = "memory://"
    #: off (self-hosted: every account on CLIPORA_DEFAULT_PLAN unless the operator sets one) or stripe
    #: (checkout and portal on; new accounts start on free) (CLIPORA_BILLING)
    billing: str = "off"
    default_plan: str = "business"
    #: Stripe: secret API key, the webhook endpoint's signing secret (whsec_…), the Price of each paid plan
    #: ("creator=price_…,business=price_…"), and the API's base URL (tests point it at a fake on loopback)
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_prices: str = ""
    stripe_api_base: str = ""
    #: this site's public origin (https://clips.example.com) for links sent elsewhere: Stripe's return
    #: pages, the manifest URL in webhook events; empty = the origin of the request (CLIPORA_PUBLIC_URL)
    public_url: str = ""
    #: webhook deliveries: the waits between attempts in seconds (Standard Webhooks' schedule), how long
    #: one attempt may take, and how long a delivery is tried in all (CLIPORA_WEBHOOK_RETRY_S, ..._TIMEOUT_S,
    #: ..._MAX_AGE_S)
    webhook_retry_s: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    webhook_timeout_s: float = 10.0
    webhook_max_age_s: float = 24 * 3600.0
    #: how often ended jobs are settled (metered, webhooks queued) and due deliveries looked for
    #: (CLIPORA_WEBHOOK_POLL_S); job ends seen on the event bus wake it at once
    webhook_poll_s: float = 2.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> GatewaySettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        parsers: dict[str, Any] = {
            "host": str, "port": int, "data_dir": Path, "max_upload_bytes": int, "database_url": str,
            "concurrency": int, "workers": int, "executor": str, "ray_address": str, "lease_s": float,
            "heartbeat_s": float, "worker_nice": int,
            "worker_warm": _bool,
            "max_jobs_per_user": int, "worker_memory_mb": int,
            "queue_bound": int, "trust_proxy": _bool, "trusted_proxies": str,
            "url_allowlist": _words, "url_ports": _ports, "fetch_connect_timeout_s": float,
            "fetch_read_timeout_s": float, "fetch_total_timeout_s": float, "fetch_max_redirects": int,
            "max_duration_s": float, "probe_timeout_s": float, "max_downloads": int, "max_downloads_per_user": int,
            "signups_per_ip_per_hour": int, "rate_limit_storage": str,
            "upload_idle_timeout_s": float, "body_timeout_s": float, "max_uploads_per_user": int,
            "max_anonymous_per_ip": int, "max_sockets_per_user": int,
            "billing": str, "default_plan": str, "stripe_secret_key": str, "stripe_webhook_secret": str,
            "stripe_prices": str, "stripe_api_base": str, "public_url": str,
            "webhook_retry_s": _floats, "webhook_timeout_s": float, "webhook_max_age_s": float,
            "webhook_poll_s": float,
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
        self.proxies()  # raises ValueError naming the bad entry
        if self.max_jobs_per_user < 0 or self.worker_memory_mb < 0:
            raise ValueError("CLIPORA_MAX_JOBS_PER_USER and CLIPORA_WORKER_MEMORY_MB must not be negative")
        if self.workers < 0:
            raise ValueError("CLIPORA_WORKERS must not be negative")
        if self.executor not in ("inprocess", "ray"):
            raise ValueError("CLIPORA_EXECUTOR must be inprocess or ray")
        if self.executor == "ray":
            from engine.ray_executor import parse_address

            if self.workers < 1:
                raise ValueError("CLIPORA_EXECUTOR=ray needs CLIPORA_WORKERS >= 1 (a worker process drives Ray)")
            parse_address(self.ray_address)  # ValueError naming CLIPORA_RAY_ADDRESS
        if not 0 < self.heartbeat_s < self.lease_s:
            raise ValueError("CLIPORA_HEARTBEAT_S must be positive and shorter than CLIPORA_LEASE_S")
        if not 0 <= self.worker_nice <= 19:
            raise ValueError("CLIPORA_WORKER_NICE must be 0-19")
        if self.queue_bound < 0:
            raise ValueError("CLIPORA_QUEUE_BOUND must not be negative")
        if not self.url_ports or any(not 0 < p < 65536 for p in self.url_ports):
            raise ValueError("CLIPORA_URL_PORTS must list ports 1-65535")
        if min(self.fetch_connect_timeout_s, self.fetch_read_timeout_s, self.fetch_total_timeout_s,
               self.max_duration_s, self.probe_timeout_s) <= 0:
            raise ValueError("CLIPORA_FETCH_*_TIMEOUT_S, CLIPORA_MAX_DURATION_S and CLIPORA_PROBE_TIMEOUT_S "
                             "must be positive")
        if self.fetch_max_redirects < 0:
            raise ValueError("CLIPORA_FETCH_MAX_REDIRECTS must not be negative")
        if self.max_downloads < 1 or self.max_downloads_per_user < 1:
            raise ValueError("CLIPORA_MAX_DOWNLOADS and CLIPORA_MAX_DOWNLOADS_PER_USER must be at least 1")
        if self.upload_idle_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError("CLIPORA_UPLOAD_IDLE_TIMEOUT_S and CLIPORA_BODY_TIMEOUT_S must be positive")
        if min(self.max_uploads_per_user, self.max_anonymous_per_ip, self.max_sockets_per_user) < 1:
            raise ValueError("CLIPORA_MAX_UPLOADS_PER_USER, CLIPORA_MAX_ANONYMOUS_PER_IP and "
                             "CLIPORA_MAX_SOCKETS_PER_USER must be at least 1")
        if self.signups_per_ip_per_hour < 1:
            raise ValueError("CLIPORA_SIGNUPS_PER_IP_PER_HOUR must be at least 1")
        if problem := storage_problem(self.rate_limit_storage):
            raise ValueError(f"CLIPORA_RATE_LIMIT_STORAGE {problem}")
        if self.billing not in ("off", "stripe"):
            raise ValueError("CLIPORA_BILLING must be off or stripe")
        if self.default_plan not in PLAN_IDS:
            raise ValueError(f"CLIPORA_DEFAULT_PLAN must be one of {', '.join(PLAN_IDS)}")
        if self.billing == "stripe" and not (self.stripe_secret_key and self.stripe_webhook_secret):
            raise ValueError("CLIPORA_BILLING=stripe needs CLIPORA_STRIPE_SECRET_KEY and "
                             "CLIPORA_STRIPE_WEBHOOK_SECRET")
        prices = self.stripe_price_ids()  # ValueError on a malformed entry
        if self.billing == "stripe" and not prices:
            raise ValueError("CLIPORA_BILLING=stripe needs CLIPORA_STRIPE_PRICES (plan=price_id, …)")
        if not self.webhook_retry_s or any(not 0 < w < 7 * 86400 for w in self.webhook_retry_s) \
                or min(self.webhook_timeout_s, self.webhook_max_age_s, self.webhook_poll_s) <= 0:
            raise ValueError("CLIPORA_WEBHOOK_RETRY_S must list positive waits; CLIPORA_WEBHOOK_TIMEOUT_S, "
                             "_MAX_AGE_S and _POLL_S must be positive")

    def stripe_price_ids(self) -> dict[str, str]:
        """CLIPORA_STRIPE_PRICES as {plan id: Stripe Price id}."""
        prices: dict[str, str] = {}
        for entry in _words(self.stripe_prices):
            plan, sep, price = entry.partition("=")
            if not sep or plan.strip() not in PLAN_IDS or not price.strip():
                raise ValueError(f"CLIPORA_STRIPE_PRICES: {entry!r} is not plan=price_id "
                                 f"(plans: {', '.join(PLAN_IDS)})")
            prices[plan.strip()] = price.strip()
        return prices

    def proxies(self) -> TrustedProxies:
        """Who stands in front: CLIPORA_TRUSTED_PROXIES, else one proxy when CLIPORA_TRUST_PROXY is on."""
        parsed = TrustedProxies.parse(self.trusted_proxies)
        return parsed if parsed else TrustedProxies(count=1 if self.trust_proxy else 0)

    def executor_config(self) -> ExecutorConfig:
        return ExecutorConfig(concurrency=self.concurrency, lease_s=self.lease_s, heartbeat_s=self.heartbeat_s)

    def __repr__(self) -> str:  # the database URL may carry a password
        url = "<set>" if self.database_url else "<sqlite in data dir>"
        return (f"GatewaySettings(host={self.host!r}, port={self.port}, data_dir={str(self.data_dir)!r}, "
                f"max_upload_bytes={self.max_upload_bytes}, database_url={url}, "
                f"concurrency={self.concurrency}, workers={self.workers}, queue_bound={self.queue_bound}, "
                f"trust_proxy={self.trust_proxy}, url_allowlist={self.url_allowlist!r}, "
                f"url_ports={self.url_ports!r}, max_duration_s={self.max_duration_s}, billing={self.billing!r})")


# The app's shared state. The keys live here, beside the settings, so the app factory and the
# route modules share them without importing each other.
SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("settings", GatewaySettings)
SERVICE: web.AppKey[JobService] = web.AppKey("service")

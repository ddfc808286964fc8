"""AccountStore on SQLite (always) and PostgreSQL (where one answers on 127.0.0.1:5432),
plus the password policy and the moving-window limiters (limits), which need no database."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from http_gateway.accounts import MAX_ACTIVE_KEYS, AccountStore, now_ms, password_problem
from http_gateway.config import GatewaySettings
from http_gateway.errors import BadRequest, Conflict
from http_gateway.models import ApiKey, Session, User
from http_gateway.ratelimit import LoginLimiter, SignupLimiter

GOOD = "Correct-Horse-7"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # argon2id, cheap for tests


@pytest.fixture
def store(db) -> AccountStore:
    return AccountStore(db, session_ttl_s=3600, hasher=FAST)


# -- users ----------------------------------------------------------------------------------------

async def test_create_user_hashes_with_argon2id_and_normalises_email(store, db):
    user = await store.create_user("  Alice.Smith@Example.COM ", GOOD)
    assert user.email == "alice.smith@example.com" and user.plan is None  # the install default plan
    async with db.session() as s:
        row = await s.get(User, user.id)
    assert row.password_hash.startswith("$argon2id$") and GOOD not in row.password_hash
    assert row.password_hash not in repr(row) and len(user.id) == 32


async def test_duplicate_email_is_conflict_case_insensitively(store):
    await store.create_user("bob@example.com", GOOD)
    with pytest.raises(Conflict, match="already exists"):
        await store.create_user("BOB@Example.com", "Another-Pass-9")


@pytest.mark.parametrize("email", ["nope", "a@b", "x@localhost", "", "two@@example.com"])
async def test_bad_email_is_bad_request(store, email):
    with pytest.raises(BadRequest, match="email"):
        await store.create_user(email, GOOD)


async def test_authenticate_right_wrong_unknown(store, monkeypatch):
    user = await store.create_user("carol@example.com", GOOD)
    assert (await store.authenticate("Carol@example.com", GOOD)).id == user.id
    assert await store.authenticate("carol@example.com", GOOD + "x") is None
    calls: list[str] = []
    real = store._verify
    monkeypatch.setattr(store, "_verify", lambda h, p: calls.append(h) or real(h, p))
    assert await store.authenticate("nobody@example.com", GOOD) is None
    # an unknown email still pays for one argon2 verification (no timing oracle)
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


async def test_authenticate_rehashes_when_parameters_change(store, db):
    user = await store.create_user("dave@example.com", GOOD)
    stronger = AccountStore(db, hasher=PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert (await stronger.authenticate("dave@example.com", GOOD)).id == user.id
    async with db.session() as s:
        new_hash = (await s.get(User, user.id)).password_hash
    assert "m=2048,t=2" in new_hash and await stronger.authenticate("dave@example.com", GOOD)


# -- sessions -------------------------------------------------------------------------------------

async def test_session_roundtrip_stores_only_the_hash(store, db):
    user = await store.create_user("erin@example.com", GOOD)
    cookie, session = await store.create_session(user.id)
    assert session.id == hashlib.sha256(cookie.encode()).hexdigest() and cookie != session.id
    assert 3600_000 - 5000 < session.expires_at - now_ms() <= 3600_000
    found = await store.session_user(cookie)
    assert found is not None and found[0].id == user.id and found[1].csrf_token == session.csrf_token
    assert await store.session_user(cookie + "x") is None
    await store.delete_session(cookie)
    assert await store.session_user(cookie) is None


async def test_expired_session_is_absent_and_removed(store, db):
    user = await store.create_user("fay@example.com", GOOD)
    cookie, session = await store.create_session(user.id)
    async with db.session() as s, s.begin():
        await s.execute(update(Session).where(Session.id == session.id).values(expires_at=now_ms() - 1))
    assert await store.session_user(cookie) is None
    async with db.session() as s:
        assert await s.get(Session, session.id) is None


# -- API keys -------------------------------------------------------------------------------------

async def test_key_format_hash_at_rest_and_lookup(store, db):
    user = await store.create_user("gus@example.com", GOOD)
    plaintext, key = await store.create_key(user.id, "ci")
    assert re.fullmatch(r"ck_live_[A-Za-z0-9_-]{43}", plaintext)
    assert key.prefix == plaintext[:12] and key.last4 == plaintext[-4:]
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    async with db.session() as s:
        row = (await s.execute(select(ApiKey).where(ApiKey.id == key.id))).scalar_one()
    stored = [str(getattr(row, c.key)) for c in ApiKey.__table__.columns]
    assert not any(plaintext in v or plaintext[12:-4] in v for v in stored)
    assert row.key_hash not in repr(row) and plaintext not in repr(row)
    found = await store.key_user(plaintext)
    assert found is not None and found[0].id == user.id and found[1].id == key.id
    assert await store.key_user(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
    assert await store.key_user("ck_live_short") is None


async def test_revoke_is_owner_scoped_and_final(store):
    alice = await store.create_user("hal@example.com", GOOD)
    mallory = await store.create_user("ivy@example.com", GOOD)
    plaintext, key = await store.create_key(alice.id, "k")
    assert await store.revoke_key(mallory.id, key.id) is None
    assert await store.revoke_key(alice.id, "unknown") is None
    assert await store.key_user(plaintext) is not None
    revoked = await store.revoke_key(alice.id, key.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert await store.key_user(plaintext) is None
    again = await store.revoke_key(alice.id, key.id)  # idempotent, keeps the first revocation time
    assert again is not None and again.revoked_at == revoked.revoked_at


async def test_ten_active_keys_at_most_and_revoking_frees_a_slot(store):
    user = await store.create_user("jo@example.com", GOOD)
    keys = [(await store.create_key(user.id, f"k{i}"))[1] for i in range(MAX_ACTIVE_KEYS)]
    with pytest.raises(Conflict, match="10 active API keys; revoke one first"):
        await store.create_key(user.id, "eleventh")
    await store.revoke_key(user.id, keys[3].id)
    await store.create_key(user.id, "replacement")
    listed = await store.list_keys(user.id)
    assert len(listed) == 11 and sum(k.revoked_at is None for k in listed) == 10
    assert listed[0].name == "replacement"  # newest first


async def test_concurrent_key_creation_cannot_exceed_the_limit(store):
    user = await store.create_user("kim@example.com", GOOD)
    results = await asyncio.gather(*(store.create_key(user.id, f"k{i}") for i in range(13)),
                                   return_exceptions=True)
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == MAX_ACTIVE_KEYS
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert len(await store.list_keys(user.id)) == MAX_ACTIVE_KEYS


async def test_touch_key_is_throttled(store, db):
    user = await store.create_user("lee@example.com", GOOD)
    plaintext, key = await store.create_key(user.id, "k")
    _, fresh = await store.key_user(plaintext)
    await store.touch_key(fresh)
    first = fresh.last_used_at
    assert first is not None
    _, again = await store.key_user(plaintext)
    assert again.last_used_at == first
    await store.touch_key(again)  # within a minute: no write
    async with db.session() as s:
        assert (await s.get(ApiKey, key.id)).last_used_at == first


# -- policy and limiter (no database) -------------------------------------------------------------

@pytest.mark.parametrize(("password", "reason"), [
    ("Short-1", "at least 10 characters"),
    ("alllowercaseletters", "mix at least two"),
    ("12345678901234", "mix at least two"),
    ("Password123", "too common"),
    ("xMonica-Geller-99", "must not contain your email"),
])
def test_password_policy_says_why(password, reason):
    assert reason in password_problem(password, "monica-geller@example.com")


def test_password_policy_accepts_a_decent_password():
    assert password_problem(GOOD, "someone@example.com") is None
    assert password_problem("correct horse battery staple", "x@example.com") is None


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """Freezes ``time.time`` (what limits' storages and ratelimit read); advance with ``clock[0] = t``."""
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def test_moving_window_blocks_then_releases(clock):
    t0 = clock[0]
    limiter = SignupLimiter(per_ip=3, window_s=60)
    for _ in range(3):
        assert limiter.attempt("k") == 0
        clock[0] += 10
    assert limiter.attempt("k") == 30  # refused: the first hit (t0) ages out at t0 + 60
    assert limiter.attempt("k") == 30  # refusals are not counted
    assert limiter.attempt("other") == 0
    clock[0] = t0 + 59.5
    assert limiter.attempt("k") == 1  # whole seconds, rounded up
    clock[0] = t0 + 60.5
    assert limiter.attempt("k") == 0  # one slot freed...
    assert limiter.attempt("k") == 10  # ...and taken; the next (t0 + 10) frees at t0 + 70


def test_memory_storage_forgets_idle_keys(clock):
    limiter = LoginLimiter(per_email=2, per_ip=3, window_s=60)
    storage = limiter.storage
    for i in range(500):
        limiter.attempt(f"10.0.{i // 256}.{i % 256}", f"user{i}@x.com")
    assert len(storage.events) == 1000
    clock[0] += 61  # every entry expired; the next hit sweeps the idle keys
    limiter.attempt("9.9.9.9", "last@x.com")
    assert set(storage.events) == {limiter.by_ip.key_for("9.9.9.9"), limiter.by_email.key_for("last@x.com")}


def test_login_limiter_per_email_and_per_ip(clock):
    t0 = clock[0]
    limiter = LoginLimiter(per_email=2, per_ip=3, window_s=60)
    limiter.attempt("1.1.1.1", "A@x.com")
    limiter.attempt("2.2.2.2", "a@x.com")
    assert limiter.retry_after("3.3.3.3", "a@x.com") == 60  # email locked from any IP
    limiter.attempt("9.9.9.9", "b@x.com")
    limiter.attempt("9.9.9.9", "c@x.com")
    limiter.attempt("9.9.9.9", "d@x.com")
    assert limiter.retry_after("9.9.9.9", "fresh@x.com") == 60  # IP locked for any email
    assert limiter.retry_after("8.8.8.8", "fresh@x.com") == 0
    limiter.succeeded("a@x.com")
    assert limiter.retry_after("3.3.3.3", "a@x.com") == 0
    clock[0] = t0 + 45
    assert limiter.retry_after("9.9.9.9", "fresh@x.com") == 15  # success elsewhere did not reset the IP
    clock[0] = t0 + 61
    assert limiter.retry_after("9.9.9.9", "fresh@x.com") == 0  # released over time


def test_rate_limit_storage_setting_is_validated():
    assert GatewaySettings.from_env({}).rate_limit_storage == "memory://"
    assert GatewaySettings.from_env({"CLIPORA_RATE_LIMIT_STORAGE": "redis://cache:6379/0"}).rate_limit_storage
    for bad in ("redis", "ftp://x", "async+redis://cache:6379"):
        with pytest.raises(ValueError, match="CLIPORA_RATE_LIMIT_STORAGE"):
            GatewaySettings.from_env({"CLIPORA_RATE_LIMIT_STORAGE": bad})
    with pytest.raises(ValueError, match="CLIPORA_SIGNUPS_PER_IP_PER_HOUR"):
        GatewaySettings.from_env({"CLIPORA_SIGNUPS_PER_IP_PER_HOUR": "0"})

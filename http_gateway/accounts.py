"""AccountStore: users, server-side sessions and API keys over the gateway's tables.

Credentials never rest in plaintext: passwords are argon2id hashes, session cookies and API
keys are stored as their SHA-256 (a database leak yields nothing a client could present).
Argon2 is CPU-bound and deliberately slow, so it runs in a worker thread, off the event loop.
The store also owns the signup policy (email syntax, password strength) so the HTTP route and
the operator CLI (`clipora users create`) apply the same rules.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from engine.db import Database
from http_gateway.errors import BadRequest, Conflict
from http_gateway.models import ApiKey, Session, User

KEY_PREFIX = "ck_live_"
KEY_LENGTH = len(KEY_PREFIX) + 43  # 32 random bytes as unpadded base64url
MAX_ACTIVE_KEYS = 10
MIN_PASSWORD_LENGTH = 10
T = TypeVar("T")
MAX_EMAIL_LENGTH = 320  # RFC 5321's longest address; checked before the address is parsed or used as a key
MAX_PASSWORD_LENGTH = 1024  # argon2 prehashes, but an unbounded body is still a cheap DoS
KEY_TOUCH_INTERVAL_MS = 60_000  # last_used_at is for display; one write a minute per key is plenty

# Frequent picks that satisfy the length/class rules anyway; compared case-insensitively.
COMMON_PASSWORDS = frozenset({
    "password123", "password1234", "password12345", "password!23", "passw0rd123", "p@ssw0rd123",
    "1234567890a", "a1234567890", "qwerty12345", "qwerty123456", "qwertyuiop1", "1qaz2wsx3edc",
    "1q2w3e4r5t", "1q2w3e4r5t6y", "zaq12wsxcde", "iloveyou123", "iloveyou12", "welcome123",
    "welcome1234", "letmein123", "letmein1234", "admin12345", "administrator1", "changeme123",
    "trustno1234", "football123", "baseball123", "sunshine123", "princess123", "dragon12345",
    "monkey12345", "abc1234567", "abcd123456", "abcdef1234", "abc123abc123", "superman123",
    "starwars123", "master12345", "whatever123", "qazwsxedc123", "asdfghjkl1", "zxcvbnm123",
    "secret12345", "summer2024!", "winter2024!", "spring2024!", "autumn2024!", "password2024",
    "password2025", "password2026", "clipora123", "clipora1234",
})


def now_ms() -> int:
    return int(time.time() * 1000)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_id() -> str:
    return secrets.token_hex(16)


def normalize_email(email: str) -> str:
    """The canonical, lower-cased address, or BadRequest saying what is wrong with it."""
    if not isinstance(email, str) or not email.strip():
        raise BadRequest("email required")
    try:
        info = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadRequest(f"invalid email: {exc}") from None
    # one account per mailbox whatever the capitalisation: compare and store lower-case
    return info.normalized.lower()


def password_problem(password: object, email: str = "") -> str | None:
    """Why a password is too weak to accept, or None when it is fine."""
    if not isinstance(password, str) or not password:
        return "password required"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    classes = (
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    if sum(classes) < 2:
        return "password must mix at least two of: lowercase letters, uppercase letters, digits, symbols"
    if password.lower() in COMMON_PASSWORDS:
        return "password is too common"
    local = email.split("@", 1)[0].lower()
    if len(local) >= 3 and local in password.lower():
        return "password must not contain your email address"
    return None


def generate_api_key() -> str:
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return KEY_PREFIX + raw


class AccountStore:
    """The repository over User / Session / ApiKey rows (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, session_ttl_s: int = 14 * 24 * 3600,
                 hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.session_ttl_s = session_ttl_s
        self.hasher = hasher or PasswordHasher()  # argon2id by default
        self._dummy_hash: str | None = None
        # argon2 is slow on purpose: its own small pool, so hashing never waits behind (or
        # starves) the loop's default pool, which also serves name lookups
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="clipora-argon2")

    async def _hashing(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def __repr__(self) -> str:
        return "<AccountStore>"

    # -- users ---------------------------------------------------------------------------------

    async def create_user(self, email: str, password: str, plan: str | None = None) -> User:
        """A new user; BadRequest on a bad email or weak password, Conflict if the email exists.

        ``plan`` None: the install's default plan (http_gateway.plans)."""
        email = normalize_email(email)
        problem = password_problem(password, email)
        if problem:
            raise BadRequest(problem)
        if await self.user_by_email(email) is not None:
            raise Conflict("an account with this email already exists")
        password_hash = await self._hashing(self.hasher.hash, password)
        user = User(id=new_id(), email=email, password_hash=password_hash, plan=plan, created_at=now_ms())
        try:
            async with self.db.session() as s, s.begin():
                s.add(user)
        except IntegrityError:  # a concurrent signup won the unique index
            raise Conflict("an account with this email already exists") from None
        return user

    async def user_by_email(self, email: str) -> User | None:
        async with self.db.session() as s:
            query = select(User).where(User.email == email.strip().lower())
            return (await s.execute(query)).scalar_one_or_none()

    async def get_user(self, user_id: str) -> User | None:
        async with self.db.session() as s:
            return await s.get(User, user_id)

    async def authenticate(self, email: str, password: str) -> User | None:
        """The user when the password matches; None otherwise, in about the same time either way."""
        user = await self.user_by_email(email) if isinstance(email, str) else None
        if user is None:
            # verify against a throwaway hash so an unknown email costs as much as a wrong password
            await self._hashing(self._verify, await self._dummy(), password)
            return None
        if not await self._hashing(self._verify, user.password_hash, password):
            return None
        if self.hasher.check_needs_rehash(user.password_hash):
            new_hash = await self._hashing(self.hasher.hash, password)
            async with self.db.session() as s, s.begin():
                await s.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
        return user

    def _verify(self, password_hash: str, password: object) -> bool:
        if not isinstance(password, str):
            return False
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hashing(self.hasher.hash, secrets.token_urlsafe(16))
        return self._dummy_hash

    # -- sessions ------------------------------------------------------------------------------

    async def create_session(self, user_id: str) -> tuple[str, Session]:
        """A fresh session; returns the cookie value (only its hash is stored) and the row."""
        cookie = secrets.token_urlsafe(32)
        now = now_ms()
        row = Session(id=sha256_hex(cookie), user_id=user_id, created_at=now,
                      expires_at=now + self.session_ttl_s * 1000, last_seen_at=now,
                      csrf_token=secrets.token_urlsafe(32))
        async with self.db.session() as s, s.begin():
            # housekeeping rides on logins: expired rows are dead weight (indexed on expires_at)
            await s.execute(delete(Session).where(Session.expires_at <= now))
            s.add(row)
        return cookie, row

    async def session_user(self, cookie_value: str) -> tuple[User, Session] | None:
        """The live session behind a cookie; an expired or unknown one is None."""
        if not cookie_value or len(cookie_value) > 128:
            return None
        sid = sha256_hex(cookie_value)
        async with self.db.session() as s:
            row = (await s.execute(
                select(User, Session).join(Session, Session.user_id == User.id).where(Session.id == sid)
            )).first()
        if row is None:
            return None
        user, session = row
        if session.expires_at <= now_ms():
            await self.delete_session(cookie_value)
            return None
        return user, session

    async def delete_session(self, cookie_value: str) -> None:
        async with self.db.session() as s, s.begin():
            await s.execute(delete(Session).where(Session.id == sha256_hex(cookie_value)))

    # -- API keys ------------------------------------------------------------------------------

    async def create_key(self, user_id: str, name: str) -> tuple[str, ApiKey]:
        """A new key; the plaintext is returned here once and never stored."""
        plaintext = generate_api_key()
        now = now_ms()
        key = ApiKey(id=new_id(), user_id=user_id, name=name, prefix=plaintext[:12], last4=plaintext[-4:],
                     key_hash=sha256_hex(plaintext), created_at=now, last_used_at=None, revoked_at=None)
        async with self.db.session() as s, s.begin():
            # a no-op write first: it row-locks the owner on PostgreSQL and takes SQLite's write
            # lock (a SELECT would not), so two concurrent creations cannot both count 9 keys
            await s.execute(update(User).where(User.id == user_id).values(plan=User.plan))
            active = (await s.execute(
                select(func.count()).select_from(ApiKey)
                .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            )).scalar_one()
            if active >= MAX_ACTIVE_KEYS:
                raise Conflict(f"you already have {MAX_ACTIVE_KEYS} active API keys; revoke one first")
            s.add(key)
        return plaintext, key

    async def list_keys(self, user_id: str) -> list[ApiKey]:
        """All of a user's keys, revoked ones included, newest first."""
        async with self.db.session() as s:
            rows = await s.execute(
                select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc(), ApiKey.id)
            )
            return list(rows.scalars())

    async def revoke_key(self, user_id: str, key_id: str) -> ApiKey | None:
        """Revokes one of the user's keys (idempotent); None when it is unknown or someone else's."""
        async with self.db.session() as s, s.begin():
            key = (await s.execute(
                select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id)
            )).scalar_one_or_none()
            if key is None:
                return None
            if key.revoked_at is None:
                key.revoked_at = now_ms()
            return key

    async def key_user(self, plaintext: str) -> tuple[User, ApiKey] | None:
        """The owner of an active key; None for a malformed, unknown or revoked one."""
        if not isinstance(plaintext, str) or len(plaintext) != KEY_LENGTH:
            return None
        if not plaintext.startswith(KEY_PREFIX):
            return None
        digest = sha256_hex(plaintext)
        async with self.db.session() as s:
            row = (await s.execute(
                select(User, ApiKey).join(ApiKey, ApiKey.user_id == User.id).where(ApiKey.key_hash == digest)
            )).first()
        if row is None:
            return None
        user, key = row
        if not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
            return None
        return user, key

    async def touch_key(self, key: ApiKey) -> None:
        """Records use for display, at most once a minute per key (keeps hot keys off the write path)."""
        now = now_ms()
        if key.last_used_at is not None and now - key.last_used_at < KEY_TOUCH_INTERVAL_MS:
            return
        async with self.db.session() as s, s.begin():
            await s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        key.last_used_at = now

"""Rows an account owns (uploaded fonts, saved caption styles): found by id, listed and counted per account.

Another account's row is as unknown as a missing one: the lookups answer None for both, and
:func:`require_owned` turns that into the routes' 404, ``{"error": "<what> not found"}``.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from http_gateway.admission import AppState
from http_gateway.errors import NotFoundError
from http_gateway.models import CaptionStyleRecord, Font
from http_gateway.plans import PLANS_KEY

#: a table whose rows belong to one account (``user_id``), with ``id`` and ``created_at``
Owned = TypeVar("Owned", Font, CaptionStyleRecord)


async def get_owned(s: AsyncSession, model: type[Owned], row_id: str, user_id: str) -> Owned | None:
    """The row ``row_id`` of ``model`` in session ``s`` if ``user_id`` owns it, else None."""
    row = await s.get(model, row_id)
    return row if row is not None and row.user_id == user_id else None


async def find_owned(app: AppState, model: type[Owned], row_id: str, user_id: str) -> Owned | None:
    """The row ``row_id`` of ``model`` if ``user_id`` owns it, else None (a session of its own)."""
    async with app[PLANS_KEY].db.session() as s:
        return await get_owned(s, model, row_id, user_id)


async def require_owned(app: AppState, model: type[Owned], row_id: str, user_id: str, what: str) -> Owned:
    """The row ``row_id`` of ``model`` that ``user_id`` owns; NotFoundError (404, ``"<what> not found"``) for a
    missing one and for another account's."""
    row = await find_owned(app, model, row_id, user_id)
    if row is None:
        raise NotFoundError(f"{what} not found")
    return row


async def list_owned(app: AppState, model: type[Owned], user_id: str) -> list[Owned]:
    """Every row of ``model`` that ``user_id`` owns, oldest first (ties by id)."""
    async with app[PLANS_KEY].db.session() as s:
        return list(await s.scalars(select(model).where(model.user_id == user_id)
                                    .order_by(model.created_at, model.id)))


async def count_owned(s: AsyncSession, model: type[Owned], user_id: str) -> int:
    """How many rows of ``model`` ``user_id`` owns, in session ``s``."""
    return await s.scalar(select(func.count()).select_from(model).where(model.user_id == user_id)) or 0

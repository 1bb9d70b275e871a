"""Voice resources: the library every action reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import Select

from vmsres.store.database import Database, Executor, Row
from vmsres.store.schema import resources

# Newest first; the id breaks ties between rows created in the same second, so paging with
# Offset never repeats or skips a row while nothing is written.
_ORDER = (resources.c.created_at.desc(), resources.c.id.desc())
USABLE_LIMIT = 1000

RECORD_COLUMNS = (
    resources.c.id,
    resources.c.resource_key,
    resources.c.account_id,
    resources.c.type,
    resources.c.state,
    resources.c.name,
    resources.c.suffix,
    resources.c.duration,
    resources.c.remark,
    resources.c.tts_content,
    resources.c.tts_options,
    resources.c.reject_reason,
    resources.c.reviewed_by,
    resources.c.created_at,
)


@dataclass(frozen=True, slots=True)
class ListFilter:
    account_id: int
    type: int
    state: int | None
    keyword: str  # "" means no keyword filter

    @property
    def shape(self) -> tuple[bool, bool]:
        return (self.state is not None, bool(self.keyword))

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"account_id": self.account_id, "type": self.type}
        if self.state is not None:
            params["state"] = self.state
        if self.keyword:
            folded = self.keyword.casefold()
            params["keyword_key"] = folded
            params["keyword_pattern"] = "%" + escape_like(folded) + "%"
        return params


def escape_like(text: str) -> str:
    """Make ``%`` and ``_`` literal in a LIKE pattern (``\\`` is the escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fold_name(name: str) -> str:
    return name.casefold()


def _where(stmt: Select[Any], has_state: bool, has_keyword: bool) -> Select[Any]:
    stmt = stmt.where(
        resources.c.account_id == sa.bindparam("account_id"), resources.c.type == sa.bindparam("type")
    )
    if has_state:
        stmt = stmt.where(resources.c.state == sa.bindparam("state"))
    if has_keyword:
        stmt = stmt.where(
            sa.or_(
                resources.c.resource_key == sa.bindparam("keyword_key"),
                resources.c.name_folded.like(sa.bindparam("keyword_pattern"), escape="\\"),
            )
        )
    return stmt


@cache
def _page_statement(has_state: bool, has_keyword: bool) -> Select[Any]:
    stmt = sa.select(*RECORD_COLUMNS)
    return (
        _where(stmt, has_state, has_keyword)
        .order_by(*_ORDER)
        .limit(sa.bindparam("limit"))
        .offset(sa.bindparam("offset"))
    )


@cache
def _count_statement(has_state: bool, has_keyword: bool) -> Select[Any]:
    return _where(sa.select(sa.func.count()).select_from(resources), has_state, has_keyword)


_insert = resources.insert().values(
    {
        c: sa.bindparam(c)
        for c in (
            "resource_key",
            "account_id",
            "type",
            "state",
            "name",
            "name_folded",
            "suffix",
            "duration",
            "remark",
            "tts_content",
            "tts_options",
            "reject_reason",
            "reviewed_by",
            "reviewed_at",
            "created_at",
            "updated_at",
        )
    }
)
_by_key = sa.select(*RECORD_COLUMNS).where(
    resources.c.account_id == sa.bindparam("account_id"),
    resources.c.resource_key == sa.bindparam("resource_key"),
)
_by_key_any_account = sa.select(*RECORD_COLUMNS).where(
    resources.c.resource_key == sa.bindparam("resource_key")
)
_usable = (
    sa.select(*RECORD_COLUMNS)
    .where(
        resources.c.account_id == sa.bindparam("account_id"),
        resources.c.type == sa.bindparam("type"),
        resources.c.state == 1,
    )
    .order_by(*_ORDER)
    .limit(USABLE_LIMIT)
)
_rename = (
    resources.update()
    .where(
        resources.c.account_id == sa.bindparam("account_id"),
        resources.c.resource_key == sa.bindparam("resource_key"),
    )
    .values(
        name=sa.bindparam("name"), name_folded=sa.bindparam("name_folded"), updated_at=sa.bindparam("now")
    )
)
_delete = resources.delete().where(
    resources.c.account_id == sa.bindparam("account_id"),
    resources.c.resource_key == sa.bindparam("resource_key"),
)
_set_state = (
    resources.update()
    .where(resources.c.resource_key == sa.bindparam("resource_key"))
    .values(
        state=sa.bindparam("state"),
        reject_reason=sa.bindparam("reject_reason"),
        reviewed_by=sa.bindparam("reviewed_by"),
        reviewed_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
)


class ResourceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, where: ListFilter, limit: int, offset: int) -> tuple[list[Row], int]:
        params = where.params()
        total = int(await self.db.fetch_value(_count_statement(*where.shape), params) or 0)
        if offset >= total:
            return [], total
        rows = await self.db.fetch_all(
            _page_statement(*where.shape), {**params, "limit": limit, "offset": offset}
        )
        return rows, total

    async def usable(self, account_id: int, type_: int) -> list[Row]:
        return await self.db.fetch_all(_usable, {"account_id": account_id, "type": type_})

    async def get(self, account_id: int, resource_key: str) -> Row | None:
        return await self.db.fetch_one(_by_key, {"account_id": account_id, "resource_key": resource_key})

    async def get_any_account(self, resource_key: str) -> Row | None:
        return await self.db.fetch_one(_by_key_any_account, {"resource_key": resource_key})

    async def insert(self, values: dict[str, Any], executor: Executor | None = None) -> None:
        values = {
            "reject_reason": None,
            "reviewed_by": None,
            "reviewed_at": None,
            "tts_content": None,
            "tts_options": None,
            "remark": "",
            "suffix": "",
            "duration": 0,
            **values,
        }
        values["name_folded"] = fold_name(values["name"])
        values.setdefault("updated_at", values["created_at"])
        await (executor or self.db).execute(_insert, values)

    async def rename(self, account_id: int, resource_key: str, name: str, now: int) -> bool:
        params = {
            "account_id": account_id,
            "resource_key": resource_key,
            "name": name,
            "name_folded": fold_name(name),
            "now": now,
        }
        return await self.db.execute(_rename, params) > 0

    async def delete(self, account_id: int, resource_key: str, executor: Executor | None = None) -> bool:
        params = {"account_id": account_id, "resource_key": resource_key}
        return await (executor or self.db).execute(_delete, params) > 0

    async def set_state(
        self, resource_key: str, state: int, reject_reason: str | None, reviewed_by: str, now: int
    ) -> bool:
        params = {
            "resource_key": resource_key,
            "state": state,
            "reject_reason": reject_reason,
            "reviewed_by": reviewed_by,
            "now": now,
        }
        return await self.db.execute(_set_state, params) > 0

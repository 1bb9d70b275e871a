"""Voice resources: the library every action reads and writes."""

from __future__ import annotations

import asyncio
import weakref
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, CompoundSelect, FromClause, Select

from vmsres.protocol.records import ResourceState
from vmsres.server.store.database import Database, Executor, Row, insert_unless_present
from vmsres.server.store.schema import (
    accounts,
    resource_blocks,
    resource_counts,
    resource_generations,
    resource_grams,
    resource_leases,
    resources,
    resources_fts,
)
from vmsres.server.versioned_cache import VersionedCache

# Newest first; the id breaks ties between rows created in the same second, so paging with
# Offset never repeats or skips a row while nothing is written.
_ORDER = (resources.c.created_at.desc(), resources.c.id.desc())
USABLE_LIMIT = 1000
STATE_UNDER_REVIEW = 0
# Trigram indexes answer substrings of at least this many characters; shorter keywords are
# single grams of resource_grams (docs/search.md).
TRIGRAM_MIN = 3
# SQLite: a 3+ character keyword over at most this many resources of the account (for the
# filter's Type and State) reads them in listing order and checks each name, instead of asking
# the FTS5 index, which is shared by every account and whose candidates grow with the whole
# store (docs/search.md, "SQLite, small accounts scan").
SCAN_ROWS = 10_000

# What a listing page needs (the wire record, plus id and created_at for merging pages of
# several accounts): fewer columns than RECORD_COLUMNS is less to read and to convert per row.
LISTING_COLUMNS = (
    resources.c.id,
    resources.c.resource_key,
    resources.c.type,
    resources.c.state,
    resources.c.name,
    resources.c.suffix,
    resources.c.duration,
    resources.c.remark,
    resources.c.tts_content,
    resources.c.tts_options,
    resources.c.reject_reason,
    resources.c.created_at,
)
# Every column a resource's callers read (the listing's, plus where its audio is and who made it).
RECORD_COLUMNS = (
    *LISTING_COLUMNS,
    resources.c.account_id,
    resources.c.reviewed_by,
    resources.c.file_name,
    resources.c.source_url,
    resources.c.sha256,
    resources.c.size_bytes,
    resources.c.blob_key,
    resources.c.rendition_key,
    resources.c.rendition_pending,
    # What was measured of the audio (the waveform is read on its own: see waveform()).
    resources.c.codec,
    resources.c.sample_rate,
    resources.c.channels,
    resources.c.duration_ms,
    resources.c.peak_dbfs,
    resources.c.loudness_lufs,
    resources.c.true_peak_dbtp,
    resources.c.silence_share,
    resources.c.levels_pending,
)
# Offsets from here on are found through resource_blocks instead of walking the listing index
# from its start (on SQLite a walk of this many entries costs about what the lookups cost).
DEEP_OFFSET = 5000
# The block levels of migration 0009_positions: level i holds blocks of created_at >> BLOCK_SHIFTS[i].
BLOCK_SHIFTS = (25, 20, 15, 10)
# Whether a dialer holds an unexpired lease, answered by the listing statement itself (the
# lease table's primary key is the resource key) instead of a second query per request.
IN_USE = (
    sa.exists()
    .where(
        resource_leases.c.resource_key == resources.c.resource_key,
        resource_leases.c.expires_at > sa.bindparam("now"),
    )
    .label("in_use")
)
INSERT_COLUMNS = (
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
    "file_name",
    "source_url",
    "audio_format",
    "codec",
    "sample_rate",
    "channels",
    "duration_ms",
    "size_bytes",
    "sha256",
    "blob_key",
    "rendition_key",
    "rendition_pending",
    "peak_dbfs",
    "loudness_lufs",
    "true_peak_dbtp",
    "silence_share",
    "waveform",
    "levels_pending",
)
_INSERT_DEFAULTS: dict[str, Any] = {c: None for c in INSERT_COLUMNS} | {
    "remark": "",
    "suffix": "",
    "duration": 0,
    "rendition_pending": False,
    "levels_pending": False,
}
# The measured levels, as measure_levels gives them and the columns hold them.
LEVEL_COLUMNS = ("peak_dbfs", "loudness_lufs", "true_peak_dbtp", "silence_share", "waveform")


@dataclass(frozen=True, slots=True)
class ListFilter:
    account_id: int
    type: int
    state: int | None
    keyword: str  # "" means no keyword filter

    @property
    def shape(self) -> tuple[bool, str]:
        """(has State, keyword mode): "" none, "short" (under 3 chars), "gram" (trigram-indexed).

        The store may run a "gram" keyword as "scan" instead: the same rows, found by reading
        the filter's rows in listing order (ResourceStore._shape, for small filters on SQLite)."""
        if not self.keyword:
            return (self.state is not None, "")
        folded = fold_name(self.keyword)
        return (self.state is not None, "gram" if len(folded) >= TRIGRAM_MIN else "short")

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"account_id": self.account_id, "type": self.type}
        if self.state is not None:
            params["state"] = self.state
        if self.keyword:
            # Folded as the names are (name_folded), so the keyword matches what is stored.
            folded = fold_name(self.keyword)
            params["keyword_key"] = folded
            params["keyword_pattern"] = "%" + escape_like(folded) + "%"
            # An FTS5 phrase: quoted, with quotes doubled, so the keyword is never FTS syntax.
            params["fts_phrase"] = '"' + folded.replace('"', '""') + '"'
        return params


def escape_like(text: str) -> str:
    """Make ``%`` and ``_`` literal in a LIKE pattern (``\\`` is the escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fold_name(name: str) -> str:
    return name.casefold()


def _where(stmt: Select[Any], dialect: str, has_state: bool, keyword: str) -> Select[Any]:
    stmt = stmt.where(
        resources.c.account_id == sa.bindparam("account_id"), resources.c.type == sa.bindparam("type")
    )
    if has_state:
        stmt = stmt.where(resources.c.state == sa.bindparam("state"))
    if keyword:
        # The exact semantics, always checked on the row; the indexes below only narrow the rows.
        stmt = stmt.where(
            sa.or_(
                resources.c.resource_key == sa.bindparam("keyword_key"),
                resources.c.name_folded.like(sa.bindparam("keyword_pattern"), escape="\\"),
            )
        )
    # ("scan" adds nothing more: the listing index gives the account's rows of the Type, and
    # State, in order, and the condition above is checked on each.)
    if keyword == "gram" and dialect == "sqlite":
        # SQLite cannot use FTS5 from a LIKE on the base table, so the candidates are spelled
        # out: the row with that key, plus the rows whose name holds the phrase's trigrams.
        # (PostgreSQL's planner uses the pg_trgm GIN index for the LIKE itself.)
        candidates = sa.union(
            sa.select(resources.c.id).where(resources.c.resource_key == sa.bindparam("keyword_key")),
            sa.select(resources_fts.c.rowid).where(
                sa.literal_column("resources_fts").op("MATCH")(sa.bindparam("fts_phrase"))
            ),
        )
        stmt = stmt.where(resources.c.id.in_(candidates))
    return stmt


def _short_keyword_arms(has_state: bool) -> tuple[Select[Any], Select[Any]]:
    """The two disjoint sources of a 1-2 character keyword's matches, as (created_at, id).

    A name contains a keyword of one or two characters exactly when that keyword is one of
    its grams, so the gram range is the name matches, with no re-check needed (and ``%``/``_``
    are literal by construction). The ResourceKey arm adds the one row whose key equals the
    keyword but whose name does not contain it, so no row is counted twice.
    """
    g = resource_grams
    by_gram = sa.select(g.c.created_at, g.c.id).where(
        g.c.account_id == sa.bindparam("account_id"),
        g.c.type == sa.bindparam("type"),
        g.c.gram == sa.bindparam("keyword_key"),
    )
    by_key = sa.select(resources.c.created_at, resources.c.id).where(
        resources.c.resource_key == sa.bindparam("keyword_key"),
        resources.c.account_id == sa.bindparam("account_id"),
        resources.c.type == sa.bindparam("type"),
        sa.not_(resources.c.name_folded.like(sa.bindparam("keyword_pattern"), escape="\\")),
    )
    if has_state:
        by_gram = by_gram.where(g.c.state == sa.bindparam("state"))
        by_key = by_key.where(resources.c.state == sa.bindparam("state"))
    return by_gram, by_key


# Page sizes up to the wire API's largest Limit are written into the SQL (``_written_limit``);
# larger ones (the console's merged pages) stay bound, so the statements stay few.
WRITTEN_LIMITS = 100


def _written_limit(limit: int | None) -> ColumnElement[Any]:
    """A page size written into the SQL instead of bound (None: bound).

    PostgreSQL keeps one plan for a prepared statement only while that plan looks no dearer
    than the plans it makes for each execution's values. To the kept plan a bound LIMIT or
    OFFSET is unknown and costed as a tenth of the rows, so it never looked cheap enough and
    every execution was planned again (0.2-0.5 ms, more than running it). With the size
    written in (one statement per size) and no OFFSET known to one plan only, each connection
    plans the statement once (docs/benchmarks.md, "PostgreSQL: a page planned once")."""
    if limit is None:
        return sa.bindparam("limit")
    return sa.literal_column(str(int(limit)))


@cache
def _page_statement(
    dialect: str, has_state: bool, keyword: str, bounded: bool = False, first_page_of: int | None = None
) -> Select[Any]:
    """A page of the listing; ``bounded`` adds ``created_at < :before`` (deep Offsets start their
    walk at a block boundary found through resource_blocks); ``first_page_of``: the first page
    of that many rows, the size written into the SQL (``_written_limit``), no Offset."""
    if keyword == "short":
        # ORDER BY on the compound itself: SQLite then merges the two ordered arms (MERGE
        # (UNION ALL)) and PostgreSQL plans a Merge Append, so a page reads Offset + Limit
        # entries of the gram range instead of sorting every match.
        matches = (
            sa.union_all(*_short_keyword_arms(has_state))
            .order_by(sa.literal_column("created_at").desc(), sa.literal_column("id").desc())
            .limit(sa.bindparam("limit"))
            .offset(sa.bindparam("offset"))
            .subquery("matches")
        )
        short_ids = sa.select(matches.c.id)
        return sa.select(*LISTING_COLUMNS, IN_USE).where(resources.c.id.in_(short_ids)).order_by(*_ORDER)
    # Deferred join: the OFFSET is walked over ids in the listing index (index-only), and only
    # the page's rows are read from the table.
    ids = _where(sa.select(resources.c.id), dialect, has_state, keyword)
    if bounded:
        ids = ids.where(resources.c.created_at < sa.bindparam("before"))
    if first_page_of is None:
        ids = ids.order_by(*_ORDER).limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))
    else:
        ids = ids.order_by(*_ORDER).limit(_written_limit(first_page_of))
    return sa.select(*LISTING_COLUMNS, IN_USE).where(resources.c.id.in_(ids)).order_by(*_ORDER)


@cache
def _matching_ids(dialect: str, has_state: bool, keyword: str) -> Select[Any] | CompoundSelect[Any]:
    """Every id a keyword query matches, in listing order, at most ``:cap`` of them."""
    if keyword == "short":
        return (
            sa.union_all(*_short_keyword_arms(has_state))
            .order_by(sa.literal_column("created_at").desc(), sa.literal_column("id").desc())
            .limit(sa.bindparam("cap"))
        )
    return (
        _where(sa.select(resources.c.id), dialect, has_state, keyword)
        .order_by(*_ORDER)
        .limit(sa.bindparam("cap"))
    )


@cache
def _one_row(dialect: str, has_state: bool, keyword: str, cap: bool) -> Select[Any]:
    """For the SQLite reader thread: one row holding what would be many (``ids``, a JSON array of
    ids in listing order; with ``cap`` False also the ``total``). Each row SQLite hands back costs
    the reader thread the GIL again, which a busy event loop keeps for up to a switch interval,
    so a statement of one row crosses over once. ``cap``: the match list (at most ``:cap`` ids);
    else the page's ids (``:limit`` after ``:offset``) and the exact Total, from one snapshot."""
    if cap:
        matches = _matching_ids(dialect, has_state, keyword).subquery("matches")
        return sa.select(sa.func.json_group_array(matches.c.id).label("ids"))
    if keyword == "short":
        page = (
            sa.union_all(*_short_keyword_arms(has_state))
            .order_by(sa.literal_column("created_at").desc(), sa.literal_column("id").desc())
            .limit(sa.bindparam("limit"))
            .offset(sa.bindparam("offset"))
            .subquery("page")
        )
    else:
        page = (
            _where(sa.select(resources.c.id), dialect, has_state, keyword)
            .order_by(*_ORDER)
            .limit(sa.bindparam("limit"))
            .offset(sa.bindparam("offset"))
            .subquery("page")
        )
    ids = sa.select(sa.func.json_group_array(page.c.id)).scalar_subquery()
    total = _count_statement(dialect, has_state, keyword).scalar_subquery()
    return sa.select(total.label("total"), ids.label("ids"))


@cache
def _rows_by_ids(n: int) -> Select[Any]:
    """The listing rows of ``n`` ids (one statement per page size, so each compiles once)."""
    wanted: list[sa.BindParameter[Any]] = [sa.bindparam(f"id{i}") for i in range(n)]
    return sa.select(*LISTING_COLUMNS, IN_USE).where(resources.c.id.in_(wanted)).order_by(*_ORDER)


_generations = sa.select(resource_generations.c.gen, resource_generations.c.lease_gen).where(
    resource_generations.c.account_id == sa.bindparam("account_id")
)


def _level_lookup(
    has_state: bool,
    level: ColumnElement[Any],
    lo: ColumnElement[Any],
    hi: ColumnElement[Any],
    skip: ColumnElement[Any],
    within: FromClause | None = None,
) -> Select[Any]:
    """The newest-first block of one level in which the ``skip``-th row lies: (block, n, cum),
    where cum counts the rows of that block and every newer one; ``lo``-``hi`` bounds the blocks.
    ``within``: the walk whose columns the bounds are (correlated, never joined in again)."""
    b = resource_blocks
    sums = (
        sa.select(b.c.block, sa.cast(sa.func.sum(b.c.n), sa.BigInteger).label("n"))
        .where(
            b.c.account_id == sa.bindparam("account_id"),
            b.c.type == sa.bindparam("type"),
            b.c.level == level,
            b.c.block.between(lo, hi),
        )
        .group_by(b.c.block)
    )
    if has_state:
        sums = sums.where(b.c.state == sa.bindparam("state"))
    if within is not None:
        sums = sums.correlate(within)
    per_block = sums.subquery("per_block")
    cum = sa.func.sum(per_block.c.n).over(order_by=per_block.c.block.desc())
    ranked = sa.select(per_block.c.block, per_block.c.n, sa.cast(cum, sa.BigInteger).label("cum")).subquery(
        "ranked"
    )
    return (
        sa.select(ranked.c.block, ranked.c.n, ranked.c.cum)
        .where(ranked.c.cum > skip)
        .order_by(ranked.c.block.desc())
        .limit(1)
    )


@cache
def _block_locator(has_state: bool) -> Select[Any]:
    """One level's lookup, the level and its bounds given as parameters (SQLite: one statement
    per level, each an in-process call)."""
    level, lo, hi, skip = (sa.bindparam(name, type_=sa.BigInteger) for name in ("level", "lo", "hi", "skip"))
    return _level_lookup(has_state, level, lo, hi, skip)


@cache
def _block_walk(has_state: bool) -> Select[Any]:
    """PostgreSQL: every level's lookup in one statement, a recursive walk down the levels in which
    each level looks inside the block the level above found (``LATERAL``), so that a page finds
    its block within its own statement (_offset_page) instead of a round trip per level. One
    row, (block, skip) of the finest level; no row when a level finds nothing."""
    last = len(BLOCK_SHIFTS) - 1
    # Blocks of the next level within one block of each level (the finest: itself).
    spans = sa.values(sa.column("level", sa.Integer), sa.column("span", sa.BigInteger), name="spans").data(
        [(i, 1 << (BLOCK_SHIFTS[i] - BLOCK_SHIFTS[i + 1]) if i < last else 1) for i in range(last + 1)]
    )
    start = sa.select(
        sa.literal(-1, sa.Integer).label("level"),
        sa.literal(-(2**62), sa.BigInteger).label("lo"),
        sa.literal(2**62, sa.BigInteger).label("hi"),
        sa.cast(sa.bindparam("skip"), sa.BigInteger).label("skip"),
        sa.cast(sa.null(), sa.BigInteger).label("block"),
    ).cte("walk", recursive=True)
    above = start.alias("above")
    found = _level_lookup(
        has_state, above.c.level + 1, above.c.lo, above.c.hi, above.c.skip, within=above
    ).lateral("found")
    step = (
        sa.select(
            above.c.level + 1,
            found.c.block * spans.c.span,
            found.c.block * spans.c.span + spans.c.span - 1,
            above.c.skip - (found.c.cum - found.c.n),
            found.c.block,
        )
        .select_from(above.join(spans, spans.c.level == above.c.level + 1).join(found, sa.true()))
        .where(above.c.level < last)
    )
    walk = start.union_all(step)
    return sa.select(walk.c.block, walk.c.skip).where(walk.c.level == last)


@cache
def _offset_page(has_state: bool, limit: int | None) -> Select[Any]:
    """PostgreSQL, no keyword: a page at any Offset with its Total, in one statement (one round
    trip and one snapshot instead of a count, a walk and a page). The walk's block bounds the
    page and its skip is the page's OFFSET; when the blocks disagree with the count (no walk
    row) the page walks the listing from the start, as ``_locate`` would have it. An Offset at
    or past the Total reads no listing at all: that condition is a one-time filter. The page
    size is written into the SQL (``_written_limit``); the OFFSET, a subquery's value, is a
    guess to every plan alike, so the plan kept is as good as one made for the values."""
    total = _count_statement("postgresql", has_state, "").scalar_subquery()
    located = _block_walk(has_state).cte("located")
    block = sa.select(located.c.block).scalar_subquery()
    skip = sa.select(located.c.skip).scalar_subquery()
    before = sa.func.coalesce((block + 1) * (1 << BLOCK_SHIFTS[-1]), 2**62)
    ids = (
        _where(sa.select(resources.c.id), "postgresql", has_state, "")
        .where(sa.bindparam("offset", type_=sa.BigInteger) < total, resources.c.created_at < before)
        .order_by(*_ORDER)
        .limit(_written_limit(limit))
        .offset(sa.func.coalesce(skip, sa.bindparam("offset", type_=sa.BigInteger)))
    )
    return (
        sa.select(*LISTING_COLUMNS, IN_USE, total.label("total"))
        .where(resources.c.id.in_(ids))
        .order_by(*_ORDER)
    )


@cache
def _count_statement(dialect: str, has_state: bool, keyword: str) -> Select[Any]:
    if not keyword:
        # Kept exact by triggers (migration 0004_scale); one to three primary-key lookups.
        stmt = sa.select(sa.func.coalesce(sa.func.sum(resource_counts.c.n), 0)).where(
            resource_counts.c.account_id == sa.bindparam("account_id"),
            resource_counts.c.type == sa.bindparam("type"),
        )
        if has_state:
            stmt = stmt.where(resource_counts.c.state == sa.bindparam("state"))
        return stmt
    if keyword == "short":
        by_gram, by_key = _short_keyword_arms(has_state)
        counts = [sa.select(sa.func.count()).select_from(arm.subquery()) for arm in (by_gram, by_key)]
        return sa.select(counts[0].scalar_subquery() + counts[1].scalar_subquery())
    return _where(sa.select(sa.func.count()).select_from(resources), dialect, has_state, keyword)


@cache
def _page_with_total(
    dialect: str, has_state: bool, keyword: str, first_page_of: int | None = None
) -> Select[Any]:
    # The count is uncorrelated, so both databases evaluate it once per statement, not per row.
    total = _count_statement(dialect, has_state, keyword).scalar_subquery().label("total")
    return _page_statement(dialect, has_state, keyword, first_page_of=first_page_of).add_columns(total)


_insert = resources.insert().values({c: sa.bindparam(c) for c in INSERT_COLUMNS})
_insert_unless_present = insert_unless_present(resources, {c: sa.bindparam(c) for c in INSERT_COLUMNS})
_by_file_name = sa.select(*RECORD_COLUMNS).where(
    resources.c.account_id == sa.bindparam("account_id"),
    resources.c.file_name == sa.bindparam("file_name"),
)
_all_blob_keys = sa.select(resources.c.blob_key, resources.c.rendition_key).where(
    resources.c.blob_key.is_not(None)
)
# Oldest first, by the partial index of migration 0010_rendition_pending.
_pending_renditions = (
    sa.select(
        resources.c.id,
        resources.c.resource_key,
        resources.c.account_id,
        resources.c.created_at,
        resources.c.audio_format,
        resources.c.blob_key,
    )
    .where(resources.c.rendition_pending, resources.c.id > sa.bindparam("after_id"))
    .order_by(resources.c.id)
    .limit(sa.bindparam("limit"))
)
_count_pending_renditions = (
    sa.select(sa.func.count()).select_from(resources).where(resources.c.rendition_pending)
)
_rendition_still_pending = sa.select(resources.c.rendition_pending).where(
    resources.c.id == sa.bindparam("row_id")
)
# Conditional on the flag, so that of several makers (workers, `vmsres renditions rebuild`) only
# one records its result.
_finish_rendition = (
    resources.update()
    .where(resources.c.id == sa.bindparam("row_id"), resources.c.rendition_pending)
    .values(rendition_key=sa.bindparam("rendition_key"), rendition_pending=False)
)
# Oldest first, by the partial index of migration 0012_audio_levels.
_pending_levels = (
    sa.select(
        resources.c.id,
        resources.c.resource_key,
        resources.c.account_id,
        resources.c.blob_key,
    )
    .where(resources.c.levels_pending, resources.c.id > sa.bindparam("after_id"))
    .order_by(resources.c.id)
    .limit(sa.bindparam("limit"))
)
_count_pending_levels = sa.select(sa.func.count()).select_from(resources).where(resources.c.levels_pending)
# Conditional on the flag, as for renditions: of several measurers only one records.
_finish_levels = (
    resources.update()
    .where(resources.c.id == sa.bindparam("row_id"), resources.c.levels_pending)
    .values({c: sa.bindparam(c) for c in LEVEL_COLUMNS} | {"levels_pending": sa.bindparam("still_pending")})
)
_waveform = sa.select(resources.c.waveform).where(resources.c.resource_key == sa.bindparam("resource_key"))
_by_key = sa.select(*RECORD_COLUMNS).where(
    resources.c.account_id == sa.bindparam("account_id"),
    resources.c.resource_key == sa.bindparam("resource_key"),
)
_by_key_any_account = sa.select(*RECORD_COLUMNS).where(
    resources.c.resource_key == sa.bindparam("resource_key")
)
_usable = (
    sa.select(*RECORD_COLUMNS, IN_USE)
    .where(
        resources.c.account_id == sa.bindparam("account_id"),
        resources.c.type == sa.bindparam("type"),
        resources.c.state == ResourceState.APPROVED,
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
# RETURNING hands back what was deleted: only the one delete that removed the row gets it (the
# event it announces shows that row), and the blob keys let the audio go after the row.
_delete = (
    resources.delete()
    .where(
        resources.c.account_id == sa.bindparam("account_id"),
        resources.c.resource_key == sa.bindparam("resource_key"),
    )
    .returning(*RECORD_COLUMNS)
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
# A review decision: only a resource still under review (State 0) is decided, so of two
# reviewers deciding at once exactly one changes it (the other's row count is 0).
_decide_undecided = _set_state.where(resources.c.state == STATE_UNDER_REVIEW)


ADMIN_COLUMNS = (*RECORD_COLUMNS, resources.c.reviewed_at, accounts.c.name.label("account_name"))
_with_account = resources.join(accounts, accounts.c.id == resources.c.account_id)


@cache
def _admin_listing(by_account: bool, by_type: bool, by_state: bool) -> Select[Any]:
    """The operators' view across accounts: oldest first, so a review queue is worked in order."""
    stmt = sa.select(*ADMIN_COLUMNS).select_from(_with_account)
    if by_account:
        stmt = stmt.where(accounts.c.name == sa.bindparam("account_name"))
    if by_type:
        stmt = stmt.where(resources.c.type == sa.bindparam("type"))
    if by_state:
        stmt = stmt.where(resources.c.state == sa.bindparam("state"))
    return stmt.order_by(resources.c.created_at, resources.c.id).limit(sa.bindparam("limit"))


# The review queue's orders (AdminOps.review_queue_page); each ends in id, so paging with an
# offset never repeats or skips a row while nothing is decided.
QUEUE_ORDERS: dict[str, tuple[Any, ...]] = {
    "oldest": (resources.c.created_at, resources.c.id),
    "newest": (resources.c.created_at.desc(), resources.c.id.desc()),
    "name": (resources.c.name_folded, resources.c.created_at, resources.c.id),
    "account": (accounts.c.name, resources.c.created_at, resources.c.id),
}


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which resources under review a queue page is about; None: not filtered on that."""

    account_name: str | None = None
    type: int | None = None
    # casefold()ed substring of the Name.
    name_folded: str | None = None
    # Submitted (created_at) at or after / at or before, epoch seconds.
    created_from: int | None = None
    created_to: int | None = None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"state": STATE_UNDER_REVIEW}
        if self.account_name is not None:
            params["account_name"] = self.account_name
        if self.type is not None:
            params["type"] = self.type
        if self.name_folded:
            params["name_pattern"] = "%" + escape_like(self.name_folded) + "%"
        if self.created_from is not None:
            params["created_from"] = self.created_from
        if self.created_to is not None:
            params["created_to"] = self.created_to
        return params

    def shape(self) -> tuple[bool, ...]:
        return (
            self.account_name is not None,
            self.type is not None,
            bool(self.name_folded),
            self.created_from is not None,
            self.created_to is not None,
        )


def _queue_where(stmt: Select[Any], shape: tuple[bool, ...]) -> Select[Any]:
    by_account, by_type, by_name, from_, to = shape
    # state first: migration 0013_review_queue's index (state, created_at, id) serves it.
    stmt = stmt.where(resources.c.state == sa.bindparam("state"))
    if by_account:
        # By id, not through a join: a total then reads only the queue's index.
        account_id = sa.select(accounts.c.id).where(accounts.c.name == sa.bindparam("account_name"))
        stmt = stmt.where(resources.c.account_id == account_id.scalar_subquery())
    if by_type:
        stmt = stmt.where(resources.c.type == sa.bindparam("type"))
    if by_name:
        stmt = stmt.where(resources.c.name_folded.like(sa.bindparam("name_pattern"), escape="\\"))
    if from_:
        stmt = stmt.where(resources.c.created_at >= sa.bindparam("created_from"))
    if to:
        stmt = stmt.where(resources.c.created_at <= sa.bindparam("created_to"))
    return stmt


@cache
def _queue_page(shape: tuple[bool, ...], order: str) -> Select[Any]:
    stmt = _queue_where(sa.select(*ADMIN_COLUMNS).select_from(_with_account), shape)
    return stmt.order_by(*QUEUE_ORDERS[order]).limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))


@cache
def _queue_total(shape: tuple[bool, ...]) -> Select[Any]:
    return _queue_where(sa.select(sa.func.count()).select_from(resources), shape)


# The whole queue by account and Type: what the counts the console shows (and filters by) add up.
# Grouped by account id from the queue's index alone (it holds account_id and type), then named.
_queue_groups = (
    sa.select(resources.c.account_id, resources.c.type, sa.func.count().label("n"))
    .where(resources.c.state == STATE_UNDER_REVIEW)
    .group_by(resources.c.account_id, resources.c.type)
    .subquery()
)
_queue_counts = sa.select(
    accounts.c.name.label("account_name"), _queue_groups.c.type, _queue_groups.c.n
).select_from(_queue_groups.join(accounts, accounts.c.id == _queue_groups.c.account_id))


_admin_by_key = (
    sa.select(*ADMIN_COLUMNS)
    .select_from(_with_account)
    .where(resources.c.resource_key == sa.bindparam("resource_key"))
)
# Read and hold the resource row until commit (a no-op clause on SQLite, whose BEGIN IMMEDIATE
# already serializes writers): a change that checks something about the row (owner, lease) then
# writes it cannot interleave with another change of the same row. SHARE for changes that only
# need the row to stay (a lease), UPDATE for changes of the row itself.
_admin_by_key_locked = {
    "update": _admin_by_key.with_for_update(of=resources),
    "share": _admin_by_key.with_for_update(of=resources, read=True),
}
# RETURNING: the keys listed are exactly the rows this statement deleted, even with creations
# landing meanwhile.
_delete_account_resources = (
    resources.delete()
    .where(resources.c.account_id == sa.bindparam("account_id"))
    .returning(resources.c.resource_key)
)


class KeywordMatchCache(VersionedCache["array[int]"]):
    """Per process: the ids a keyword query matched, in listing order, each list tagged with
    the account's generation (resource_generations) it was read at.

    A list is used only while the account's generation is unchanged, and every write that can
    change a match changes it inside the writing transaction, so every worker of every server
    sees a write at once. Least recently used lists go first past ``max_ids`` ids in all.
    """

    # Beyond this many matches a list is not kept: it would cost more to fetch every id than to
    # count and page (docs/search.md).
    ENTRY_CAP = 250_000

    def __init__(self, max_ids: int) -> None:
        # + 1: an empty list is an entry too.
        super().__init__(max_ids, lambda ids: len(ids) + 1)
        self.entry_cap = min(max_ids // 4, self.ENTRY_CAP)

    @classmethod
    def of_megabytes(cls, megabytes: float) -> KeywordMatchCache:
        return cls(int(megabytes * 1024 * 1024) // array("q").itemsize)

    @property
    def enabled(self) -> bool:
        return self.entry_cap > 0


class ResourceStore:
    def __init__(
        self, db: Database, keyword_cache: KeywordMatchCache | None = None, scan_rows: int = SCAN_ROWS
    ) -> None:
        self.db = db
        self.scan_rows = scan_rows
        self.keyword_cache = keyword_cache or KeywordMatchCache(0)
        # One build of a match list at a time per key: concurrent requests for a keyword whose
        # list is missing wait for the first one's instead of each counting every match.
        self._builds: weakref.WeakValueDictionary[tuple[int, int, int | None, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def page(
        self, where: ListFilter, limit: int, offset: int, now: int, generation: int | None = None
    ) -> tuple[list[Row], int]:
        """A page of matches (each row with ``in_use`` as of ``now``) and the exact Total.

        ``generation``: the account's resources generation, when the caller has read it before
        calling (with the key's check): a match list is tagged with it instead of reading it again.
        """
        params = where.params()
        params["now"] = now
        if where.keyword and self.keyword_cache.enabled:
            cached = await self._cached_keyword_page(where, params, limit, offset, generation)
            if cached is not None:
                return cached
        shape = await self._shape(where, params)
        params["limit"] = limit
        params["offset"] = offset
        # A keyword's count (and page) costs as many steps as it has matches: such statements go
        # where they cannot hold the event loop. The others cost a few index lookups and stay.
        if where.keyword and shape[0] == "sqlite":
            found = await self.db.long_reads.fetch_one(_one_row(*shape, cap=False), params)
            assert found is not None
            return await self._rows_by_ids(orjson.loads(found["ids"]), now), int(found["total"])
        if not where.keyword and shape[0] == "postgresql":
            # One statement and one round trip whatever the Offset, each planned once per
            # connection: on PostgreSQL those, not the index steps, are what a page costs.
            written = limit if limit <= WRITTEN_LIMITS else None
            if offset == 0:
                statement = _page_with_total(*shape, first_page_of=written)
            else:
                statement = _offset_page(shape[1], written)
            rows = await self.db.fetch_all(statement, {**params, "skip": offset})
            if rows or offset == 0:
                return rows, int(rows[0]["total"]) if rows else 0
            # An empty page: past the end, whose Total is one more lookup.
            return [], int(await self.db.fetch_value(_count_statement(*shape), params) or 0)
        db = self.db.long_reads if where.keyword else self.db
        if offset == 0:
            # The first page, by far the most asked for, is one statement (a round trip saved
            # on PostgreSQL, and the Total and the page from one snapshot); when it is empty
            # there is nothing to count either.
            rows = await db.fetch_all(_page_with_total(*shape), params)
            return rows, int(rows[0]["total"] or 0) if rows else 0
        # Deeper pages count first: an Offset past the end must not walk the listing to find
        # out that the page is empty.
        total = int(await db.fetch_value(_count_statement(*shape), params) or 0)
        if offset >= total:
            return [], total
        if not where.keyword and offset >= DEEP_OFFSET:
            located = await self._locate(params, where.state is not None, offset)
            if located is not None:
                params["before"], params["offset"] = located
                return await self.db.fetch_all(_page_statement(*shape, bounded=True), params), total
        return await db.fetch_all(_page_statement(*shape), params), total

    async def _shape(self, where: ListFilter, params: dict[str, Any]) -> tuple[str, bool, str]:
        """(dialect, has State, keyword mode) of the statements that answer ``where``."""
        has_state, mode = where.shape
        dialect = self.db.dialect_name
        if mode == "gram" and dialect == "sqlite":
            # Exact, kept by triggers: one to three primary-key lookups.
            rows = int(await self.db.fetch_value(_count_statement(dialect, has_state, ""), params) or 0)
            if rows <= self.scan_rows:
                mode = "scan"
        return dialect, has_state, mode

    async def _locate(self, params: dict[str, Any], has_state: bool, offset: int) -> tuple[int, int] | None:
        """(before, skip): the listing from ``created_at < before`` on, less ``skip`` rows, is
        the listing less ``offset`` rows. A few block lookups instead of walking ``offset`` rows:
        each level narrows the block the row lies in to one of 32 blocks of the next level.
        SQLite only: PostgreSQL walks the levels inside the page's own statement (_offset_page)."""
        locator = _block_locator(has_state)
        skip, lo, hi = offset, -(2**62), 2**62
        found = None
        for level, shift in enumerate(BLOCK_SHIFTS):
            found = await self.db.fetch_one(
                locator, {**params, "level": level, "lo": lo, "hi": hi, "skip": skip}
            )
            if found is None:
                return None  # the blocks disagree with the count: walk the listing instead
            skip -= int(found["cum"]) - int(found["n"])
            if level + 1 < len(BLOCK_SHIFTS):
                span = 1 << (shift - BLOCK_SHIFTS[level + 1])
                lo = int(found["block"]) * span
                hi = lo + span - 1
        assert found is not None
        return (int(found["block"]) + 1) << BLOCK_SHIFTS[-1], skip

    async def _cached_keyword_page(
        self,
        where: ListFilter,
        params: dict[str, Any],
        limit: int,
        offset: int,
        generation: int | None,
    ) -> tuple[list[Row], int] | None:
        """The page from the account's cached match list (fetched first when stale or absent);
        None when there are too many matches to keep, so the caller counts and pages instead."""
        cache = self.keyword_cache
        key = (where.account_id, where.type, where.state, params["keyword_key"])
        # Read before the matches (here, or by the caller with the key's check): a write that
        # lands in between leaves the list tagged with the older generation, so the next
        # request fetches it again.
        if generation is None:
            generation = (await self.generations(where.account_id))[0]
        ids = cache.get(key, generation)
        if ids is None:
            build = self._builds.get(key)
            if build is None:
                build = self._builds[key] = asyncio.Lock()
            async with build:
                ids = cache.get(key, generation)  # built meanwhile by the request we waited for
                if ids is None:
                    bounded = {**params, "cap": cache.entry_cap + 1}
                    shape = await self._shape(where, params)
                    if shape[0] == "sqlite":
                        listed = await self.db.long_reads.fetch_value(_one_row(*shape, cap=True), bounded)
                        found = orjson.loads(listed)
                    else:
                        # The short-keyword compound yields (created_at, id); the others id alone.
                        index = 1 if shape[2] == "short" else 0
                        found = await self.db.long_reads.fetch_column(_matching_ids(*shape), bounded, index)
                    if len(found) > cache.entry_cap:
                        return None
                    ids = array("q", found)
                    cache.put(key, generation, ids)
        return await self._rows_by_ids(ids[offset : offset + limit], params["now"]), len(ids)

    async def _rows_by_ids(self, wanted: Sequence[int], now: int) -> list[Row]:
        """The listing rows of these ids, in listing order (primary-key lookups, on the loop)."""
        if not wanted:
            return []
        by_id: dict[str, Any] = {f"id{i}": value for i, value in enumerate(wanted)}
        by_id["now"] = now
        return await self.db.fetch_all(_rows_by_ids(len(wanted)), by_id)

    async def generations(self, account_id: int) -> tuple[int, int]:
        """(resources, leases) generation of the account; both change with every such write."""
        row = await self.db.fetch_one(_generations, {"account_id": account_id})
        return (0, 0) if row is None else (int(row["gen"]), int(row["lease_gen"]))

    async def usable(self, account_id: int, type_: int, now: int) -> list[Row]:
        return await self.db.fetch_all(_usable, {"account_id": account_id, "type": type_, "now": now})

    async def get(self, account_id: int, resource_key: str) -> Row | None:
        return await self.db.fetch_one(_by_key, {"account_id": account_id, "resource_key": resource_key})

    async def get_any_account(self, resource_key: str, executor: Executor | None = None) -> Row | None:
        return await (executor or self.db).fetch_one(_by_key_any_account, {"resource_key": resource_key})

    async def get_by_file_name(
        self, account_id: int, file_name: str, executor: Executor | None = None
    ) -> Row | None:
        params = {"account_id": account_id, "file_name": file_name}
        return await (executor or self.db).fetch_one(_by_file_name, params)

    async def referenced_blob_keys(self) -> set[str]:
        rows = await self.db.fetch_all(_all_blob_keys)
        return {key for row in rows for key in (row["blob_key"], row["rendition_key"]) if key}

    async def pending_renditions(self, after_id: int, limit: int) -> list[Row]:
        """Audio resources whose telephony rendition waits for ffmpeg, by id after ``after_id``."""
        return await self.db.fetch_all(_pending_renditions, {"after_id": after_id, "limit": limit})

    async def rendition_still_pending(self, row_id: int) -> bool:
        return bool(await self.db.fetch_value(_rendition_still_pending, {"row_id": row_id}))

    async def count_pending_renditions(self) -> int:
        return int(await self.db.fetch_value(_count_pending_renditions) or 0)

    async def finish_rendition(self, row_id: int, rendition_key: str | None) -> bool:
        """Record a made rendition (or None: ffmpeg could not make one); False if another maker
        already did, or the resource is gone."""
        params = {"row_id": row_id, "rendition_key": rendition_key}
        return await self.db.execute(_finish_rendition, params) > 0

    async def pending_levels(self, after_id: int, limit: int) -> list[Row]:
        """Audio resources whose levels wait for ffmpeg, by id after ``after_id``."""
        return await self.db.fetch_all(_pending_levels, {"after_id": after_id, "limit": limit})

    async def count_pending_levels(self) -> int:
        return int(await self.db.fetch_value(_count_pending_levels) or 0)

    async def finish_levels(self, row_id: int, levels: dict[str, Any], still_pending: bool) -> bool:
        """Record measured levels (LEVEL_COLUMNS); ``still_pending`` keeps the resource waiting
        for ffmpeg. False when another measurer recorded first, or the resource is gone."""
        params = {
            "row_id": row_id,
            "still_pending": still_pending,
            **{c: levels.get(c) for c in LEVEL_COLUMNS},
        }
        return await self.db.execute(_finish_levels, params) > 0

    async def waveform(self, resource_key: str) -> str | None:
        """The stored waveform (hex of its bucket levels), or None."""
        value = await self.db.fetch_value(_waveform, {"resource_key": resource_key})
        return None if value is None else str(value)

    async def insert(
        self, values: dict[str, Any], executor: Executor | None = None, unless_present: bool = False
    ) -> bool:
        """True when inserted; with ``unless_present`` a taken key or FileName is no error but False."""
        values = {**_INSERT_DEFAULTS, **values}
        values["name_folded"] = fold_name(values["name"])
        if values["updated_at"] is None:
            values["updated_at"] = values["created_at"]
        stmt = _insert_unless_present[self.db.dialect_name] if unless_present else _insert
        return await (executor or self.db).execute(stmt, values) > 0

    async def rename(
        self, account_id: int, resource_key: str, name: str, now: int, executor: Executor | None = None
    ) -> bool:
        params = {
            "account_id": account_id,
            "resource_key": resource_key,
            "name": name,
            "name_folded": fold_name(name),
            "now": now,
        }
        return await (executor or self.db).execute(_rename, params) > 0

    async def delete(
        self, account_id: int, resource_key: str, executor: Executor | None = None
    ) -> Row | None:
        """Delete the row; returns it as it was (None when this call deleted nothing)."""
        params = {"account_id": account_id, "resource_key": resource_key}
        return await (executor or self.db).fetch_one(_delete, params)

    async def admin_get(
        self,
        resource_key: str,
        executor: Executor | None = None,
        lock: Literal["update", "share"] | None = None,
    ) -> Row | None:
        """The resource with its account's name; ``lock`` holds the row until the transaction ends."""
        stmt = _admin_by_key if lock is None else _admin_by_key_locked[lock]
        return await (executor or self.db).fetch_one(stmt, {"resource_key": resource_key})

    async def admin_list(
        self, account_name: str | None, type_: int | None, state: int | None, limit: int
    ) -> list[Row]:
        params: dict[str, Any] = {"limit": limit}
        if account_name is not None:
            params["account_name"] = account_name
        if type_ is not None:
            params["type"] = type_
        if state is not None:
            params["state"] = state
        stmt = _admin_listing(account_name is not None, type_ is not None, state is not None)
        return await self.db.fetch_all(stmt, params)

    async def queue_page(self, where: QueueFilter, order: str, offset: int, limit: int) -> list[Row]:
        params = {**where.params(), "offset": offset, "limit": limit}
        return await self.db.fetch_all(_queue_page(where.shape(), order), params)

    async def queue_total(self, where: QueueFilter) -> int:
        return int(await self.db.fetch_value(_queue_total(where.shape()), where.params()))

    async def queue_counts(self) -> list[Row]:
        """(account_name, type, n) for every account and Type with resources under review."""
        return await self.db.fetch_all(_queue_counts)

    async def delete_all(self, account_id: int, executor: Executor | None = None) -> list[str]:
        """Delete every resource of an account; the keys that were deleted."""
        return await (executor or self.db).fetch_column(_delete_account_resources, {"account_id": account_id})

    async def set_state(
        self,
        resource_key: str,
        state: int,
        reject_reason: str | None,
        reviewed_by: str,
        now: int,
        executor: Executor | None = None,
        *,
        only_under_review: bool = False,
    ) -> bool:
        """Whether the row changed; ``only_under_review``: a decision, which a resource already
        decided (or missing) refuses by changing nothing."""
        params = {
            "resource_key": resource_key,
            "state": state,
            "reject_reason": reject_reason,
            "reviewed_by": reviewed_by,
            "now": now,
        }
        statement = _decide_undecided if only_under_review else _set_state
        return await (executor or self.db).execute(statement, params) > 0

"""The wire record of a resource row; its fields are declared in vmsres.protocol.records."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from vmsres.protocol.records import RESOURCE, ResourceType
from vmsres.server.store.database import Row

_CHINA_OFFSET = 8 * 3600


def china_time(epoch_seconds: int) -> str:
    """The docs show CreateTime as China time (UTC+8), 'YYYY-MM-DD HH:MM:SS'."""
    # Every record of a listing is formatted; rows of one page mostly share a day, so the
    # date part is cached and the time of day is plain integer arithmetic.
    day, second = divmod(epoch_seconds + _CHINA_OFFSET, 86400)
    hour, rest = divmod(second, 3600)
    return f"{_china_date(day)} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}"


@lru_cache(maxsize=1024)
def _china_date(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


# How each field of the declared record is read from a row, as a Python expression over ``row``;
# keyed by the declaration, so a field added there and not here fails at import.
_SOURCES: Mapping[str, str] = {
    "ResourceKey": 'row["resource_key"]',
    "Name": 'row["name"]',
    "Suffix": 'row["suffix"]',
    "Duration": 'row["duration"]',
    "State": 'row["state"]',
    "CreateTime": 'china_time(row["created_at"])',
    "Type": 'row["type"]',
    "Remark": 'row["remark"]',
    "RejectReason": 'row["reject_reason"] or ""',
    # Rows read without the lease join have no in_use: not leased.
    "InUse": 'bool(row.get("in_use"))',
    "TtsTemplateContent": 'row["tts_content"] or ""',
    "TtsOptions": 'row["tts_options"] or ""',
}
if _SOURCES.keys() != RESOURCE.by_name.keys():
    raise RuntimeError("records.py does not read exactly the fields of protocol.records.RESOURCE")


def _compile_record(type_: ResourceType) -> Callable[[Row], dict[str, Any]]:
    """One dict display per Type, in the declared order: a listing formats every record of a page,
    and a compiled display is about twice as fast as a loop over the fields."""
    items = ", ".join(
        f"{f.name!r}: {_SOURCES[f.name]}" for f in RESOURCE.fields if f.only_for in (None, type_)
    )
    namespace: dict[str, Any] = {"china_time": china_time}
    exec(f"def record(row):\n    return {{{items}}}\n", namespace)  # the source is ours, above
    record: Callable[[Row], dict[str, Any]] = namespace["record"]
    return record


_RECORDS = {int(t): _compile_record(t) for t in ResourceType}


def resource_record(row: Row) -> dict[str, Any]:
    """The wire record (protocol.records.RESOURCE) of a resource row."""
    return _RECORDS[row["type"]](row)

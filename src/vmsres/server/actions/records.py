"""The wire record of a resource row; its fields are declared in vmsres.protocol.records."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from operator import itemgetter
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


# How each field of the declared record is read from a row; keyed by the declaration, so a field
# added there and not here fails at import.
_READERS: Mapping[str, Callable[[Row], Any]] = {
    "ResourceKey": itemgetter("resource_key"),
    "Name": itemgetter("name"),
    "Suffix": itemgetter("suffix"),
    "Duration": itemgetter("duration"),
    "State": itemgetter("state"),
    "CreateTime": lambda row: china_time(row["created_at"]),
    "Type": itemgetter("type"),
    "Remark": itemgetter("remark"),
    "RejectReason": lambda row: row["reject_reason"] or "",
    # Rows read without the lease join have no in_use.
    "InUse": lambda row: bool(row.get("in_use")),
    "TtsTemplateContent": lambda row: row["tts_content"] or "",
    "TtsOptions": lambda row: row["tts_options"] or "",
}
if _READERS.keys() != RESOURCE.by_name.keys():
    raise RuntimeError("records.py does not read exactly the fields of protocol.records.RESOURCE")


def _fields_for(type_: ResourceType) -> tuple[tuple[str, Callable[[Row], Any]], ...]:
    return tuple(
        (f.name, _READERS[f.name]) for f in RESOURCE.fields if f.only_for is None or f.only_for == type_
    )


_FIELDS_BY_TYPE = {int(t): _fields_for(t) for t in ResourceType}


def resource_record(row: Row) -> dict[str, Any]:
    """The wire record (protocol.records.RESOURCE) of a resource row."""
    return {name: read(row) for name, read in _FIELDS_BY_TYPE[row["type"]]}

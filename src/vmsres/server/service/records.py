"""The wire shape of a resource record."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from vmsres.server.store.database import Row

_CHINA_OFFSET = 8 * 3600
TYPE_TTS = 1


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


def resource_record(row: Row) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ResourceKey": row["resource_key"],
        "Name": row["name"],
        "Suffix": row["suffix"],
        "Duration": row["duration"],
        "State": row["state"],
        "CreateTime": china_time(row["created_at"]),
        "Type": row["type"],
        "Remark": row["remark"],
        # Our extension: why a resource was rejected ("" otherwise). SDKs ignore unknown fields.
        "RejectReason": row["reject_reason"] or "",
        # Our extension: leased by a dialer through the admin API, so it cannot be renamed or
        # deleted until the lease ends.
        "InUse": bool(row.get("in_use")),
    }
    if row["type"] == TYPE_TTS:
        record["TtsTemplateContent"] = row["tts_content"] or ""
        record["TtsOptions"] = row["tts_options"] or ""
    return record

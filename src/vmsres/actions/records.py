"""The wire shape of a resource record."""

from __future__ import annotations

import time
from typing import Any

from vmsres.store.database import Row

_CHINA_OFFSET = 8 * 3600
TYPE_TTS = 1


def china_time(epoch_seconds: int) -> str:
    """The docs show CreateTime as China time (UTC+8), 'YYYY-MM-DD HH:MM:SS'."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_seconds + _CHINA_OFFSET))


def resource_record(row: Row, in_use: bool = False) -> dict[str, Any]:
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
        "InUse": in_use,
    }
    if row["type"] == TYPE_TTS:
        record["TtsTemplateContent"] = row["tts_content"] or ""
        record["TtsOptions"] = row["tts_options"] or ""
    return record

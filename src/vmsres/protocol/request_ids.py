"""Request ids in the docs' shape; the server stamps responses and its audit trail with them."""

from __future__ import annotations

import os
import time
from functools import lru_cache

_CHINA_OFFSET = 8 * 3600


def new_request_id(now: float | None = None) -> str:
    """32 characters like the docs' ids: the China-time second, then 18 uppercase hex digits."""
    return _china_stamp(int(time.time() if now is None else now)) + os.urandom(9).hex().upper()


@lru_cache(maxsize=4)
def _china_stamp(second: int) -> str:
    # Every request of one second shares the stamp; strftime is most of an id's cost.
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(second + _CHINA_OFFSET))

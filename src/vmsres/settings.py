"""Server settings: one dataclass, filled from the command line, handed to worker processes."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from vmsres.service.review import ReviewPolicy
from vmsres.store.database import database_url_for_dir

SETTINGS_ENV = "VMSRES_SERVE_SETTINGS"


@dataclass
class Settings:
    data_dir: str = "./data"
    database_url: str | None = None
    # Shared counters and cache for all processes (later: throttling); None keeps them in-process.
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    review: ReviewPolicy = "auto"
    log_level: str = "info"
    max_body_bytes: int = 1024 * 1024
    extra: dict[str, object] = field(default_factory=dict)

    def resolved_database_url(self) -> str:
        return self.database_url or database_url_for_dir(self.data_dir)

    def to_env(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_env(cls) -> Settings:
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            return cls()
        return cls(**orjson.loads(raw))

    def ensure_data_dir(self) -> Path:
        path = Path(self.data_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

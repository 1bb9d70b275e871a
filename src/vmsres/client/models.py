"""Typed records of the voice-resource API and the mapping between wire and Python names."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any, ClassVar, TypeVar

_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")
CHINA_TIME = timezone(timedelta(hours=8), "UTC+8")


def python_name(wire_name: str) -> str:
    """``TtsTemplateContent`` -> ``tts_template_content``; action names map the same way."""
    return _WORD_START.sub("_", wire_name).lower()


def wire_name(python: str) -> str:
    """The inverse of :func:`python_name` for the names the API uses (no acronyms)."""
    return "".join(part.capitalize() for part in python.split("_"))


class ResourceType(IntEnum):
    AUDIO = 0
    TTS = 1
    IVR = 2


class ResourceState(IntEnum):
    REVIEWING = 0
    APPROVED = 1
    REJECTED = 2


_Record = TypeVar("_Record", bound="WireRecord")


class WireRecord:
    """Field ``snake_case`` <-> wire ``PascalCase``; absent or null fields take the field's default.

    Unknown wire fields are ignored, as the official SDKs do, so a newer server does not break us.
    """

    __slots__ = ()
    # Wire names that the PascalCase rule cannot produce.
    _renames: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_wire(cls: type[_Record], data: Any) -> _Record:
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            raw = data.get(cls._renames.get(field.name, wire_name(field.name)))
            if raw is not None:
                values[field.name] = raw
        return cls(**values)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = [v.to_wire() if isinstance(v, WireRecord) else v for v in value]
            out[self._renames.get(field.name, wire_name(field.name))] = value
        return out


@dataclass(frozen=True, slots=True)
class Resource(WireRecord):
    resource_key: str = ""
    name: str = ""
    suffix: str = ""
    duration: int = 0
    state: int = ResourceState.REVIEWING
    create_time: str = ""
    type: int = ResourceType.AUDIO
    remark: str = ""
    reject_reason: str = ""
    tts_template_content: str = ""
    tts_options: str = ""

    @property
    def created_at(self) -> datetime | None:
        """CreateTime as an aware datetime; the wire gives China time without a zone."""
        try:
            return datetime.strptime(self.create_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TIME)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ResourcePage(WireRecord):
    records: tuple[Resource, ...] = ()
    total: int = 0
    limit: int = 0
    offset: int = 0

    @classmethod
    def from_wire(cls, data: Any) -> ResourcePage:
        page = super(ResourcePage, cls).from_wire(data)
        return dataclasses.replace(page, records=resources_from_wire(page.records))


@dataclass(frozen=True, slots=True)
class ResourceRef(WireRecord):
    """What OpenCreateTts and OpenUpdateResource answer."""

    resource_key: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class DeletedResource(WireRecord):
    resource_key: str = ""


@dataclass(frozen=True, slots=True)
class UploadUrl(WireRecord):
    upload_url: str = ""


@dataclass(frozen=True, slots=True)
class DownloadUrl(WireRecord):
    url: str = ""
    expires_at: int = 0


@dataclass(frozen=True, slots=True)
class StoredResource(WireRecord):
    """What CommitResourceUpload and FetchResource answer."""

    resource_key: str = ""
    name: str = ""
    suffix: str = ""


def resources_from_wire(data: Any) -> tuple[Resource, ...]:
    if not isinstance(data, list | tuple):
        raise TypeError(f"expected a JSON array of resources, got {type(data).__name__}")
    return tuple(item if isinstance(item, Resource) else Resource.from_wire(item) for item in data)


def usable_from_wire(data: Any) -> tuple[Resource, ...]:
    """QueryUsableResource answers a bare array; V2 wraps it in ``{Records: [...]}``."""
    if isinstance(data, Mapping):
        return resources_from_wire(data.get("Records") or [])
    return resources_from_wire(data if data is not None else [])

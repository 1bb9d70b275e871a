"""What the generated models and operations (tools/clientgen.py) build on: the record base class
and the Operation an action call becomes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Generic, TypeVar

from vmsres.protocol.spec import wire_name

CHINA_TIME = timezone(timedelta(hours=8), "UTC+8")

R = TypeVar("R")
_Record = TypeVar("_Record", bound="WireRecord")


class WireRecord:
    """Field ``snake_case`` <-> wire ``PascalCase``; absent or null fields take the field's default.

    Unknown wire fields are ignored, as the official SDKs do, so a newer server does not break us.
    """

    __slots__ = ()
    # Fields holding an array of records, and the records' class.
    _nested: ClassVar[Mapping[str, type[WireRecord]]] = {}

    @classmethod
    def from_wire(cls: type[_Record], data: Any) -> _Record:
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            raw = data.get(wire_name(field.name))
            if raw is not None:
                nested = cls._nested.get(field.name)
                values[field.name] = raw if nested is None else nested.many_from_wire(raw)
        return cls(**values)

    @classmethod
    def many_from_wire(cls: type[_Record], data: Any) -> tuple[_Record, ...]:
        """A JSON array of records."""
        if not isinstance(data, list | tuple):
            raise TypeError(f"expected a JSON array of {cls.__name__}, got {type(data).__name__}")
        return tuple(cls.from_wire(item) for item in data)

    @classmethod
    def listed_from_wire(cls: type[_Record], data: Any) -> tuple[_Record, ...]:
        """A bare array of records, or one wrapped as ``{Records: [...]}``; both mean the same."""
        if isinstance(data, Mapping):
            return cls.many_from_wire(data.get("Records") or [])
        return cls.many_from_wire(data if data is not None else [])

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = [v.to_wire() if isinstance(v, WireRecord) else v for v in value]
            out[wire_name(field.name)] = value
        return out


class ResourceExtras:
    """What Resource offers beyond its wire fields."""

    __slots__ = ()
    create_time: str

    @property
    def created_at(self) -> datetime | None:
        """CreateTime as an aware datetime; the wire gives China time without a zone."""
        try:
            return datetime.strptime(self.create_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TIME)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Operation(Generic[R]):
    """One action call: its wire parameters (None: leave it out) and how to read its Result."""

    action: str
    params: Mapping[str, Any]
    decode: Callable[[Any], R]

"""What the service answers: the resource Types and States, the resource record and every action's
result shape, declared once.

The server builds its answers from these shapes, the Python client's models are generated from
them (tools/clientgen.py), and docs/api.md shows them (tools/docgen.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal


class ResourceType(IntEnum):
    """What a resource is; the wire's ``Type``."""

    AUDIO = 0
    TTS = 1
    IVR = 2

    @property
    def label(self) -> str:
        """The short name people see (console, admin API)."""
        return _TYPE_TEXT[self][0]

    @property
    def doc(self) -> str:
        return _TYPE_TEXT[self][1]


_TYPE_TEXT: Mapping[ResourceType, tuple[str, str]] = {
    ResourceType.AUDIO: ("audio", "voice notification file"),
    ResourceType.TTS: ("TTS", "TTS template"),
    ResourceType.IVR: ("IVR", "IVR file"),
}


class ResourceState(IntEnum):
    """Where a resource is in review; the wire's ``State``."""

    REVIEWING = 0
    APPROVED = 1
    REJECTED = 2

    @property
    def label(self) -> str:
        return _STATE_TEXT[self][0]

    @property
    def doc(self) -> str:
        return _STATE_TEXT[self][1]


_STATE_TEXT: Mapping[ResourceState, tuple[str, str]] = {
    ResourceState.REVIEWING: ("under review", "waits for the review rules or an operator"),
    ResourceState.APPROVED: ("approved", "usable in calls; listed by QueryUsableResource"),
    ResourceState.REJECTED: ("rejected", "RejectReason says why"),
}

# Audio files are uploaded or fetched; TTS templates are created from text.
AUDIO_TYPES = (ResourceType.AUDIO, ResourceType.IVR)


def wire_values(members: Iterable[IntEnum]) -> tuple[int, ...]:
    """The wire values, as plain ints (so messages show ``(0, 1, 2)``)."""
    return tuple(int(member) for member in members)


def labels(members: Iterable[ResourceType | ResourceState]) -> dict[int, str]:
    return {int(member): member.label for member in members}


def listing(members: Iterable[ResourceType | ResourceState], *, text: Literal["label", "doc"]) -> str:
    """``0 audio, 1 TTS, 2 IVR``: each wire value with its label or doc text."""
    return ", ".join(f"{int(member)} {getattr(member, text)}" for member in members)


# --- Shapes ------------------------------------------------------------------------------------

WireKind = Literal["str", "int", "bool", "float"]


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an answer object, by its wire name."""

    name: str
    kind: WireKind | Shape
    doc: str = ""
    # A JSON array of ``kind`` (a Shape).
    many: bool = False
    extension: bool = False  # not in Volcengine's public docs; ours
    # Present only on records of this Type.
    only_for: ResourceType | None = None

    def render(self) -> str:
        if isinstance(self.kind, Shape):
            return f"{self.name}: [{self.kind.name}]" if self.many else f"{self.name}: {self.kind.name}"
        return self.name


@dataclass(frozen=True, slots=True)
class Shape:
    """A JSON object of the answer; ``name`` is also the Python client's class for it."""

    name: str
    doc: str
    fields: tuple[Field, ...]
    by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def render(self, order: tuple[str, ...] | None = None) -> str:
        names = order or tuple(f.name for f in self.fields)
        return "{" + ", ".join(self.by_name[name].render() for name in names) + "}"


# array: a bare JSON array of the shape; records: ``{Records: [shape]}``.
Wrapping = Literal["object", "array", "records"]


@dataclass(frozen=True, slots=True)
class Result:
    """An action's ``Result``: how it is rendered in the docs, and built by the server."""

    shape: Shape
    wrapping: Wrapping = "object"
    # The wire order of the fields where it differs from the shape's (the real service differs
    # between actions, and answers stay byte-identical to it).
    order: tuple[str, ...] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.order is not None and sorted(self.order) != sorted(self.shape.by_name):
            raise ValueError(f"order {self.order} does not list exactly the fields of {self.shape.name}")

    @property
    def field_names(self) -> tuple[str, ...]:
        return self.order or tuple(f.name for f in self.shape.fields)

    def render(self) -> str:
        if self.wrapping == "array":
            text = f"a bare array `[{self.shape.name}]`"
        elif self.wrapping == "records":
            text = f"`{{Records: [{self.shape.name}]}}`"
        else:
            text = f"`{self.shape.render(self.order)}`"
        return f"{text} ({self.note})" if self.note else text

    def of_records(self, records: list[Any]) -> Any:
        """The answer of an action whose result is a list of records."""
        if self.wrapping == "object":
            raise TypeError("an object result is built from its fields")
        return records if self.wrapping == "array" else {"Records": records}

    def build(self, **values: Any) -> dict[str, Any]:
        """The answer object with exactly the declared fields, in the wire order."""
        if self.wrapping != "object":
            raise TypeError(f"a {self.wrapping} result is built from records, not fields")
        if values.keys() != self.shape.by_name.keys():
            raise TypeError(f"{self.shape.name} has fields {', '.join(self.field_names)}")
        return {name: values[name] for name in self.field_names}


RESOURCE = Shape(
    "Resource",
    "One resource of the account.",
    (
        Field("ResourceKey", "str", "32 lowercase hex characters"),
        Field("Name", "str", "as created or renamed"),
        Field("Suffix", "str", '`.mp3` or `.wav` (decided by the content), `""` for TTS templates'),
        Field(
            "Duration",
            "int",
            "whole seconds, measured from the audio (see [audio.md](audio.md)); 0 for TTS templates",
        ),
        Field("State", "int", listing(ResourceState, text="label")),
        Field("CreateTime", "str", "`YYYY-MM-DD HH:MM:SS` in China time (UTC+8)"),
        Field("Type", "int", listing(ResourceType, text="doc")),
        Field("Remark", "str", "free text"),
        Field("RejectReason", "str", 'why the resource was rejected, `""` otherwise', extension=True),
        Field(
            "InUse",
            "bool",
            "`true` while a dialer holds an unexpired lease on it (see [security.md](security.md))",
            extension=True,
        ),
        Field("TtsTemplateContent", "str", "the template's text", only_for=ResourceType.TTS),
        Field("TtsOptions", "str", "the TtsOption JSON text as given", only_for=ResourceType.TTS),
    ),
)

RESOURCE_PAGE = Shape(
    "ResourcePage",
    "One page of a listing.",
    (
        Field("Records", RESOURCE, many=True),
        Field("Total", "int", "matches in all pages"),
        Field("Limit", "int"),
        Field("Offset", "int"),
    ),
)
RESOURCE_REF = Shape(
    "ResourceRef",
    "What OpenCreateTts and OpenUpdateResource answer.",
    (Field("ResourceKey", "str"), Field("Name", "str")),
)
DELETED_RESOURCE = Shape(
    "DeletedResource", "What OpenDeleteResource answers.", (Field("ResourceKey", "str"),)
)
UPLOAD_URL = Shape("UploadUrl", "Where to PUT the file's bytes.", (Field("UploadUrl", "str"),))
STORED_RESOURCE = Shape(
    "StoredResource",
    "What CommitResourceUpload and FetchResource answer.",
    (Field("ResourceKey", "str"), Field("Name", "str"), Field("Suffix", "str")),
)
DOWNLOAD_URL = Shape(
    "DownloadUrl",
    "A signed URL of a resource's audio.",
    (Field("Url", "str"), Field("ExpiresAt", "int", "epoch seconds")),
)

# Every shape an action answers with (and those inside them): the Python client's models are
# generated from this list, and vmsres.protocol.spec refuses a result shape left out of it.
SHAPES: tuple[Shape, ...] = (
    RESOURCE,
    RESOURCE_PAGE,
    RESOURCE_REF,
    DELETED_RESOURCE,
    UPLOAD_URL,
    STORED_RESOURCE,
    DOWNLOAD_URL,
)

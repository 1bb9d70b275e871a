"""The service description: every action, its parameters and its result, declared once.

This table drives request validation on the server, the Python client (its typed operations are
generated from it by tools/clientgen.py), the CLI and the generated parameter tables in
docs/api.md. Change a bound here and all of them follow. Results are shapes of records.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from vmsres.protocol.errors import (
    InvalidParameter,
    MissingParameter,
    ResourceKeyIsNone,
    ResourceNameIsNone,
    UrlIsNone,
    VmsError,
)
from vmsres.protocol.records import (
    AUDIO_TYPES,
    DELETED_RESOURCE,
    DOWNLOAD_URL,
    RESOURCE,
    RESOURCE_PAGE,
    RESOURCE_REF,
    SHAPES,
    STORED_RESOURCE,
    UPLOAD_URL,
    ResourceState,
    ResourceType,
    Result,
    listing,
    wire_values,
)

Kind = Literal["int", "str", "json_object", "bool"]
Location = Literal["query", "body"]
# json: a JSON body. query: the query string and an empty form body. query_json: the query string
# and the body `{}` as application/json (OpenDeleteResource goes through the SDK's JSON handler with
# an empty dict). get: a GET with the query string and no body.
Transport = Literal["json", "query", "query_json", "get"]

NAME_MAX_LENGTH = 128
REMARK_MAX_LENGTH = 512
KEYWORD_MAX_LENGTH = 256
TTS_CONTENT_MAX_LENGTH = 1000
TTS_OPTION_MAX_LENGTH = 2048
URL_MAX_LENGTH = 2048
RESOURCE_KEY_MAX_LENGTH = 64
# 18 digits keep every integer inside a signed 64-bit column.
_INT_MAX_DIGITS = 18


_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def python_name(wire_name: str) -> str:
    """``TtsTemplateContent`` -> ``tts_template_content``; action and field names map the same way."""
    return _WORD_START.sub("_", wire_name).lower()


def wire_name(python: str) -> str:
    """The inverse of :func:`python_name` for the names the API uses (no acronyms)."""
    return "".join(part.capitalize() for part in python.split("_"))


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    doc: str
    required: bool = False
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[int | str, ...] | None = None
    max_length: int | None = None
    # A blank string counts as absent (so a required parameter reports it as missing).
    blank_is_missing: bool = False
    # The resource family's more specific code for an absent value, where it has one.
    missing_error: type[VmsError] | None = None
    locations: tuple[Location, ...] = ("query", "body")
    extension: bool = False  # not in Volcengine's public docs; ours

    def parse(self, raw: Any) -> Any:
        """Coerce one wire value; ``None`` means absent. Raises the declared error."""
        if raw is None or (self.blank_is_missing and isinstance(raw, str) and not raw.strip()):
            if self.required:
                if self.missing_error is not None:
                    raise self.missing_error()
                raise MissingParameter(self.name)
            return self.default
        if self.kind == "int":
            value: Any = _parse_int(self.name, raw)
            self._check_choice(value)
            if self.minimum is not None and value < self.minimum:
                raise InvalidParameter(self.name, f"It must be at least {self.minimum}.")
            if self.maximum is not None and value > self.maximum:
                raise InvalidParameter(self.name, f"It must be at most {self.maximum}.")
            return value
        if self.kind == "json_object":
            return _parse_json_object(self.name, raw, self.max_length)
        if self.kind == "bool":
            return _parse_bool(self.name, raw)
        if not isinstance(raw, str):
            raise InvalidParameter(self.name, "It must be a string.")
        if self.max_length is not None and len(raw) > self.max_length:
            raise InvalidParameter(self.name, f"It must be at most {self.max_length} characters.")
        if "\x00" in raw:
            raise InvalidParameter(self.name, "It must not contain NUL characters.")
        self._check_choice(raw)
        return raw

    def _check_choice(self, value: int | str) -> None:
        if self.choices is not None and value not in self.choices:
            raise InvalidParameter(self.name, f"It must be one of {', '.join(map(str, self.choices))}.")


def _parse_int(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise InvalidParameter(name, "It must be an integer.")
    if isinstance(raw, int):
        if abs(raw) >= 10**_INT_MAX_DIGITS:
            raise InvalidParameter(name, "It is out of range.")
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        digits = text[1:] if text[:1] == "-" else text
        if digits and digits.isascii() and digits.isdigit() and len(digits) <= _INT_MAX_DIGITS:
            return int(text)
    raise InvalidParameter(name, "It must be an integer.")


_TRUE = ("true", "True", "TRUE", "1")
_FALSE = ("false", "False", "FALSE", "0")


def _parse_bool(name: str, raw: Any) -> bool:
    # Query strings carry text; JSON bodies may carry true or 1.
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InvalidParameter(name, "It must be true or false.")


def _parse_json_object(name: str, raw: Any, max_length: int | None) -> str:
    """A JSON object, given as a JSON string (the documented form) or as an object; kept as text."""
    if isinstance(raw, dict):
        text = orjson.dumps(raw).decode()
    elif isinstance(raw, str):
        text = raw
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidParameter(name, "It must be a JSON object.") from None
        if not isinstance(decoded, dict):
            raise InvalidParameter(name, "It must be a JSON object.")
    else:
        raise InvalidParameter(name, "It must be a JSON object.")
    if max_length is not None and len(text) > max_length:
        raise InvalidParameter(name, f"It must be at most {max_length} characters.")
    return text


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    doc: str
    params: tuple[Param, ...]
    result: Result
    # How the official Python SDK (volcengine) sends it; our client does the same.
    transport: Transport = "json"
    methods: tuple[str, ...] = ("POST", "GET")
    mutating: bool = False
    extension: bool = False
    by_name: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate merged wire parameters; unknown names are ignored, absent ones defaulted."""
        return {p.name: p.parse(raw.get(p.name)) for p in self.params}


# --- Shared declarations ---------------------------------------------------------------------


def _resource_key() -> Param:
    return Param(
        "ResourceKey",
        "str",
        "The resource's key, as returned when it was created.",
        required=True,
        blank_is_missing=True,
        max_length=RESOURCE_KEY_MAX_LENGTH,
        missing_error=ResourceKeyIsNone,
    )


def _name(doc: str, name: str = "Name") -> Param:
    return Param(
        name,
        "str",
        doc,
        required=True,
        blank_is_missing=True,
        max_length=NAME_MAX_LENGTH,
        missing_error=ResourceNameIsNone,
    )


def _audio_type() -> Param:
    return Param(
        "Type",
        "int",
        " or ".join(
            f"{int(t)} {t.doc}" + (" (default)" if t == ResourceType.AUDIO else "") for t in AUDIO_TYPES
        )
        + ".",
        default=int(ResourceType.AUDIO),
        choices=wire_values(AUDIO_TYPES),
        extension=True,
    )


def _any_type() -> Param:
    return Param(
        "Type",
        "int",
        f"Resource type: {listing(ResourceType, text='doc')}.",
        required=True,
        choices=wire_values(ResourceType),
    )


ACTION_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "QueryOpenGetResource",
        "List the account's resources of one type, newest first, with optional filters.",
        (
            _any_type(),
            Param(
                "Keyword",
                "str",
                "Matches a resource whose ResourceKey equals it or whose Name contains it "
                "(case-insensitive; `%` and `_` are literal). Empty means no filter.",
                default="",
                max_length=KEYWORD_MAX_LENGTH,
            ),
            Param(
                "State",
                "int",
                f"{listing(ResourceState, text='label')}. Absent means any.",
                choices=wire_values(ResourceState),
            ),
            Param("Limit", "int", "Page size.", default=10, minimum=1, maximum=100),
            Param(
                "Offset",
                "int",
                "Rows to skip (page 2 is Offset=Limit).",
                default=0,
                minimum=0,
                maximum=10**15,
            ),
        ),
        Result(RESOURCE_PAGE),
    ),
    ActionSpec(
        "QueryUsableResource",
        "List the account's approved resources of one type, newest first.",
        (_any_type(),),
        Result(RESOURCE, "array"),
        transport="query",
    ),
    ActionSpec(
        "QueryUsableResourceV2",
        "Like QueryUsableResource, in the generated SDK's shape.",
        (_any_type(),),
        Result(RESOURCE, "records"),
        transport="get",
        methods=("GET", "POST"),
    ),
    ActionSpec(
        "OpenCreateTts",
        f"Create a text-to-speech template (Type {int(ResourceType.TTS)}).",
        (
            _name("The template's name."),
            Param(
                "TtsTemplateContent",
                "str",
                "The text; variables are written `#name#` (letters and digits). `${...}` is refused.",
                required=True,
                blank_is_missing=True,
                max_length=TTS_CONTENT_MAX_LENGTH,
            ),
            Param(
                "TtsOption",
                "json_object",
                "Voice options as a JSON object string, e.g. "
                '`{"VoiceType":"BV001","Speed":1}`; stored verbatim and returned as TtsOptions.',
                max_length=TTS_OPTION_MAX_LENGTH,
            ),
            Param("Remark", "str", "Free text.", default="", max_length=REMARK_MAX_LENGTH),
            Param(
                "Type",
                "int",
                f"Must be {int(ResourceType.TTS)} when given (the docs show it).",
                default=int(ResourceType.TTS),
                choices=wire_values((ResourceType.TTS,)),
            ),
        ),
        Result(RESOURCE_REF),
        mutating=True,
    ),
    ActionSpec(
        "OpenUpdateResource",
        "Rename a resource.",
        (_resource_key(), _name("The new name; an empty name is refused.")),
        Result(RESOURCE_REF),
        transport="query",
        mutating=True,
    ),
    ActionSpec(
        "OpenDeleteResource",
        "Delete a resource and its audio.",
        (_resource_key(),),
        Result(DELETED_RESOURCE),
        transport="query_json",
        mutating=True,
    ),
    ActionSpec(
        "GetResourceUploadUrl",
        "Get a URL to PUT an audio file to (valid 10 minutes).",
        (_name("The file's name; unique in the account and the idempotency key of the upload.", "FileName"),),
        Result(UPLOAD_URL),
        mutating=True,
    ),
    ActionSpec(
        "CommitResourceUpload",
        "Create the resource from the bytes PUT to the upload URL.",
        (_name("The same FileName as in GetResourceUploadUrl.", "FileName"), _audio_type()),
        Result(STORED_RESOURCE, order=("Name", "Suffix", "ResourceKey")),
        mutating=True,
    ),
    ActionSpec(
        "FetchResource",
        "Create a resource from audio the service downloads from a URL.",
        (
            Param(
                "Url",
                "str",
                "An http or https URL of an MP3 or WAV file.",
                required=True,
                blank_is_missing=True,
                max_length=URL_MAX_LENGTH,
                missing_error=UrlIsNone,
            ),
            _name("The resource's name; unique in the account."),
            _audio_type(),
        ),
        Result(STORED_RESOURCE),
        mutating=True,
    ),
    ActionSpec(
        "GetResourceDownloadUrl",
        "Get a signed URL (valid 10 minutes) to download a resource's original audio or its 8 kHz "
        "telephony rendition.",
        (
            _resource_key(),
            Param(
                "Rendition",
                "str",
                "`original` (as uploaded) or `telephony` (8 kHz mono WAV).",
                default="original",
                choices=("original", "telephony"),
            ),
        ),
        Result(DOWNLOAD_URL, note="ExpiresAt in epoch seconds"),
        extension=True,
    ),
)

# --- Common extensions, declared once and appended to every action they apply to ------------

CLIENT_TOKEN_MAX_LENGTH = 64

CLIENT_TOKEN = Param(
    "ClientToken",
    "str",
    "Idempotency token (our extension, Volcengine's convention): a retry with the same token and "
    "parameters within 24 hours gets the first answer again; different parameters give "
    "IdempotentParameterMismatch.",
    max_length=CLIENT_TOKEN_MAX_LENGTH,
    blank_is_missing=True,
    extension=True,
)
DRY_RUN = Param(
    "DryRun",
    "bool",
    "true: check the request (signature, parameters, quotas, that the resource exists and is not "
    "in use, ...) and answer DryRunOperation instead of doing it.",
    default=False,
    extension=True,
)


def _with_common(spec: ActionSpec) -> ActionSpec:
    extra = (CLIENT_TOKEN, DRY_RUN) if spec.mutating else (DRY_RUN,)
    return replace(spec, params=spec.params + extra)


ACTION_SPECS = tuple(_with_common(spec) for spec in ACTION_SPECS)

ACTIONS: Mapping[str, ActionSpec] = {spec.name: spec for spec in ACTION_SPECS}

# The client's models are generated from SHAPES (tools/clientgen.py): a result shape left out of
# it would give a client that cannot import, so it is refused here, where the shape is used.
_unlisted = {s.result.shape.name for s in ACTION_SPECS} - {shape.name for shape in SHAPES}
if _unlisted:
    raise RuntimeError(f"result shapes missing from vmsres.protocol.records.SHAPES: {sorted(_unlisted)}")

"""One typed function per action: Python parameters in, an Operation (what to send, how to read
the answer) out. Client and AsyncClient turn each into a method with the same signature.

These signatures are the only place the parameters appear in Python form. The parameter names,
their order and whether they are required are checked against vmsres.protocol.spec by
tests/test_client_spec.py; the docstrings are generated from the spec's text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vmsres.client.models import (
    DeletedResource,
    DownloadUrl,
    Resource,
    ResourcePage,
    ResourceRef,
    StoredResource,
    UploadUrl,
    python_name,
    usable_from_wire,
)
from vmsres.protocol.spec import ACTIONS

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Operation(Generic[R]):
    action: str
    # Wire names to values; None means "leave it out".
    params: Mapping[str, Any]
    decode: Callable[[Any], R]


def _operation(action: str, decode: Callable[[Any], R], arguments: Mapping[str, Any]) -> Operation[R]:
    spec = ACTIONS[action]
    return Operation(action, {p.name: arguments[python_name(p.name)] for p in spec.params}, decode)


def _documented(action: str) -> Callable[[F], F]:
    """Give the function the spec's description of the action and its parameters."""
    spec = ACTIONS[action]

    def apply(function: F) -> F:
        lines = [spec.doc, "", f"Wire action ``{action}``; the result is {spec.result}.", "", "Args:"]
        for param in spec.params:
            required = "required" if param.required else "optional"
            lines.append(f"    {python_name(param.name)} ({param.name}, {required}): {param.doc}")
        function.__doc__ = "\n".join(lines)
        return function

    return apply


# Each body passes locals() so the mapping to wire names comes from the spec, not from a list
# typed here a second time; locals() holds exactly the parameters because it is read first.


@_documented("QueryOpenGetResource")
def query_open_get_resource(
    type: int,
    keyword: str | None = None,
    state: int | None = None,
    limit: int | None = None,
    offset: int | None = None,
    dry_run: bool | None = None,
) -> Operation[ResourcePage]:
    return _operation("QueryOpenGetResource", ResourcePage.from_wire, locals())


@_documented("QueryUsableResource")
def query_usable_resource(
    type: int,
    dry_run: bool | None = None,
) -> Operation[tuple[Resource, ...]]:
    return _operation("QueryUsableResource", usable_from_wire, locals())


@_documented("QueryUsableResourceV2")
def query_usable_resource_v2(
    type: int,
    dry_run: bool | None = None,
) -> Operation[tuple[Resource, ...]]:
    return _operation("QueryUsableResourceV2", usable_from_wire, locals())


@_documented("OpenCreateTts")
def open_create_tts(
    name: str,
    tts_template_content: str,
    tts_option: str | Mapping[str, Any] | None = None,
    remark: str | None = None,
    type: int | None = None,
    client_token: str | None = None,
    dry_run: bool | None = None,
) -> Operation[ResourceRef]:
    return _operation("OpenCreateTts", ResourceRef.from_wire, locals())


@_documented("OpenUpdateResource")
def open_update_resource(
    resource_key: str,
    name: str,
    client_token: str | None = None,
    dry_run: bool | None = None,
) -> Operation[ResourceRef]:
    return _operation("OpenUpdateResource", ResourceRef.from_wire, locals())


@_documented("OpenDeleteResource")
def open_delete_resource(
    resource_key: str,
    client_token: str | None = None,
    dry_run: bool | None = None,
) -> Operation[DeletedResource]:
    return _operation("OpenDeleteResource", DeletedResource.from_wire, locals())


@_documented("GetResourceUploadUrl")
def get_resource_upload_url(
    file_name: str,
    client_token: str | None = None,
    dry_run: bool | None = None,
) -> Operation[UploadUrl]:
    return _operation("GetResourceUploadUrl", UploadUrl.from_wire, locals())


@_documented("CommitResourceUpload")
def commit_resource_upload(
    file_name: str,
    type: int | None = None,
    client_token: str | None = None,
    dry_run: bool | None = None,
) -> Operation[StoredResource]:
    return _operation("CommitResourceUpload", StoredResource.from_wire, locals())


@_documented("FetchResource")
def fetch_resource(
    url: str,
    name: str,
    type: int | None = None,
    client_token: str | None = None,
    dry_run: bool | None = None,
) -> Operation[StoredResource]:
    return _operation("FetchResource", StoredResource.from_wire, locals())


@_documented("GetResourceDownloadUrl")
def get_resource_download_url(
    resource_key: str,
    rendition: str | None = None,
    dry_run: bool | None = None,
) -> Operation[DownloadUrl]:
    return _operation("GetResourceDownloadUrl", DownloadUrl.from_wire, locals())


# Action name -> its function; a KeyError here at import means an action lacks its function.
OPERATIONS: Mapping[str, Callable[..., Operation[Any]]] = {
    name: globals()[python_name(name)] for name in ACTIONS
}

"""A Python client for the VMS voice-resource OpenAPI, for vmsres and the real endpoint alike.

    from vmsres.client import Client, ResourceType

    with Client("AK...", "SK...", endpoint="http://127.0.0.1:8080") as client:
        for resource in client.iter_resources(type=ResourceType.TTS):
            print(resource.resource_key, resource.name)

Wire errors are raised as the classes of vmsres.protocol.errors (``ResourceKeyIsNotExist``, ...), each
with ``code``, ``message``, ``request_id`` and ``http_status``. The sync ``Client`` and the
``AsyncClient`` share one sans-I/O core (core.py) and differ only in their httpx transport; their
operations and models are generated from vmsres.protocol (tools/clientgen.py). The client imports
the protocol, httpx and orjson only, never the server.
"""

from vmsres.client.asynchronous import AsyncClient
from vmsres.client.credentials import Credentials, resolve_credentials
from vmsres.client.errors import (
    ClientError,
    CredentialsNotFound,
    ProtocolError,
    RequestTimeout,
    TransportError,
    UnknownVmsError,
)
from vmsres.client.models import (
    DeletedResource,
    Resource,
    ResourcePage,
    ResourceRef,
    ResourceState,
    ResourceType,
    StoredResource,
    UploadUrl,
)
from vmsres.client.retry import NO_RETRY, RetryPolicy
from vmsres.client.sync import Client
from vmsres.client.wire import DEFAULT_ENDPOINT, DEFAULT_REGION, PRODUCTION_ENDPOINT
from vmsres.protocol.errors import ERRORS, VmsError

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_REGION",
    "ERRORS",
    "NO_RETRY",
    "PRODUCTION_ENDPOINT",
    "AsyncClient",
    "Client",
    "ClientError",
    "Credentials",
    "CredentialsNotFound",
    "DeletedResource",
    "ProtocolError",
    "RequestTimeout",
    "Resource",
    "ResourcePage",
    "ResourceRef",
    "ResourceState",
    "ResourceType",
    "RetryPolicy",
    "StoredResource",
    "TransportError",
    "UnknownVmsError",
    "UploadUrl",
    "VmsError",
    "resolve_credentials",
]

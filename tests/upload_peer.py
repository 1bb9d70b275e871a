"""An in-memory peer speaking the documented upload protocol, until the server has it (issue 3).

GetResourceUploadUrl -> {UploadUrl}; PUT the bytes there (200); CommitResourceUpload(FileName,
Type) -> {Name, Suffix, ResourceKey}; QueryOpenGetResource over what was committed. It checks
every signature with vmsres.protocol.signing, as the real server does. Only what the client needs is here.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.stubs import Reply, Seen, Stub, envelope, error, ok, scripted_server
from vmsres.protocol.errors import VmsError
from vmsres.protocol.signing import parse_authorization, parse_query, verify_signature

SECRET = "peer-secret"
ACCESS_KEY = "AKLTpeer"


@dataclass
class UploadPeer:
    stub: Stub
    tickets: dict[str, str] = field(default_factory=dict)  # token -> FileName
    uploaded: dict[str, bytes] = field(default_factory=dict)  # FileName -> bytes
    committed: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    # FileNames whose commit fails, to test partial failure.
    refuse: set[str] = field(default_factory=set)
    # How many PUTs to answer 503 before accepting, to test the upload's retries.
    flaky_puts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.stub.url

    def answer(self, seen: Seen) -> Reply:
        path, _, raw_query = seen.path.partition("?")
        if seen.method == "PUT" and path.startswith("/upload/"):
            with self.lock:
                self.actions.append("PUT")
                if self.flaky_puts > 0:
                    self.flaky_puts -= 1
                    return error(503, "ServiceUnavailable")
                file_name = self.tickets.get(path.removeprefix("/upload/"))
                if file_name is None:
                    return error(404, "NotFound")
                self.uploaded[file_name] = seen.body
            return Reply(200, b"")
        try:
            verify_signature(
                parse_authorization(seen.headers.get("authorization")),
                SECRET,
                method=seen.method,
                path=path,
                query_pairs=parse_query(raw_query),
                headers=seen.headers,
                body=seen.body,
            )
        except VmsError as failure:
            return error(failure.http_status, failure.code, failure.message)
        params: dict[str, Any] = dict(parse_qsl(raw_query))
        if seen.body.strip():
            params.update(json.loads(seen.body))
        action = params.pop("Action")
        with self.lock:
            self.actions.append(action)
            return self._action(action, params)

    def _action(self, action: str, params: dict[str, Any]) -> Reply:
        if action == "GetResourceUploadUrl":
            token = uuid.uuid4().hex
            self.tickets[token] = params["FileName"]
            return ok({"UploadUrl": f"{self.url}/upload/{token}"})
        if action == "CommitResourceUpload":
            name = params["FileName"]
            if name in self.refuse:
                return error(400, "FILE_ANALYSE_ERROR", "Only wav and mp3 files can be parsed.")
            if name not in self.uploaded:
                return error(404, "RESOURCE_IS_NONE")
            stem, dot, suffix = name.rpartition(".")
            record = {
                "ResourceKey": uuid.uuid4().hex,
                # Name without the extension, which travels in Suffix (one of the two plausible
                # conventions; the client must find the upload again either way).
                "Name": stem if dot else name,
                "Suffix": f".{suffix}" if dot else "",
                "Type": int(params.get("Type", 0)),
                "State": 1,
            }
            self.committed.append(record)
            return ok({k: record[k] for k in ("Name", "Suffix", "ResourceKey")})
        if action == "FetchResource":
            # The real service downloads the URL; recording it is enough for the client's side.
            suffix = "." + params["Url"].rpartition(".")[2]
            record = {
                "ResourceKey": uuid.uuid4().hex,
                "Name": params["Name"],
                "Suffix": suffix,
                "Type": int(params.get("Type", 0)),
                "State": 1,
                "Url": params["Url"],
            }
            self.committed.append(record)
            return ok({k: record[k] for k in ("ResourceKey", "Name", "Suffix")})
        if action == "QueryOpenGetResource":
            keyword = str(params.get("Keyword", "")).lower()
            rows = [
                r for r in self.committed if r["Type"] == int(params["Type"]) and keyword in r["Name"].lower()
            ]
            limit, offset = int(params.get("Limit", 10)), int(params.get("Offset", 0))
            return ok(
                {
                    "Records": rows[offset : offset + limit],
                    "Total": len(rows),
                    "Limit": limit,
                    "Offset": offset,
                }
            )
        return Reply(400, envelope(code="InvalidAction", message="The specified action is invalid."))


@contextmanager
def upload_peer() -> Iterator[UploadPeer]:
    holder: list[UploadPeer] = []
    with scripted_server(lambda _, seen: holder[0].answer(seen)) as stub:
        holder.append(UploadPeer(stub))
        yield holder[0]

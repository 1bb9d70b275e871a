"""The unsigned byte endpoints: PUT /upload/<token> and GET /download/<token>.

They carry no Volcengine signature; the HMAC-signed, expiring token in the path is the credential,
as with a presigned object-storage URL.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import orjson

from vmsres.protocol.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    ResourceSizeOverLimit,
    VmsError,
    VolcTosServerError,
)
from vmsres.protocol.request_ids import new_request_id
from vmsres.server.audio import MAX_AUDIO_BYTES
from vmsres.server.service import outages
from vmsres.server.service.ingest import IngestService
from vmsres.server.settings import BODY_IDLE_SECONDS
from vmsres.server.wire.access_log import CLIENT_ABORT_CODE, CLIENT_ABORT_STATUS, log_request
from vmsres.server.wire.asgi import (
    BodyTooLarge,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    read_body,
    send_response,
)
from vmsres.server.wire.envelope import DEFAULT_REGION, error_body, error_headers, success_body

UPLOAD_PREFIX = "/upload/"
DOWNLOAD_PREFIX = "/download/"
error_log = logging.getLogger("vmsres.error")
log = logging.getLogger("vmsres")


class TransferApp:
    def __init__(self, ingest: IngestService, body_timeout_seconds: float = BODY_IDLE_SECONDS) -> None:
        self.ingest = ingest
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        path: str = scope["path"]
        action = "UploadResource" if path.startswith(UPLOAD_PREFIX) else "DownloadResource"
        status, code = 200, ""
        headers = [(b"x-tt-logid", request_id.encode())]
        try:
            if path.startswith(UPLOAD_PREFIX):
                if scope["method"] not in ("PUT", "POST"):
                    raise MethodNotAllowed()
                nonce = await self.ingest.authorize_upload(path[len(UPLOAD_PREFIX) :])
                try:
                    body = await read_body(scope, receive, MAX_AUDIO_BYTES, self.body_timeout_seconds)
                except BodyTooLarge:
                    raise ResourceSizeOverLimit() from None
                except ClientDisconnected:
                    # Nothing is stored and the URL stays usable: the client may PUT again.
                    status, code = CLIENT_ABORT_STATUS, CLIENT_ABORT_CODE
                    log.info(orjson.dumps({"event": "client abort", "RequestId": request_id}).decode())
                    return
                size = await self.ingest.store_upload(nonce, body)
                payload = success_body(request_id, action, DEFAULT_REGION, {"Size": size})
                await send_response(send, 200, payload, headers=headers)
            elif path.startswith(DOWNLOAD_PREFIX):
                if scope["method"] not in ("GET", "HEAD"):
                    raise MethodNotAllowed()
                download = await self.ingest.open_download(path[len(DOWNLOAD_PREFIX) :])
                disposition = f"attachment; filename*=UTF-8''{quote(download.file_name)}".encode()
                reader = download.reader
                try:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-type", download.content_type.encode()),
                                (b"content-length", str(reader.size).encode()),
                                (b"content-disposition", disposition),
                                *headers,
                            ],
                        }
                    )
                    if scope["method"] != "HEAD":
                        # Piece by piece from the store: a download never holds the file in memory.
                        async for chunk in reader.chunks():
                            await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                except Exception:
                    # The status line is out: all that is left is to cut the transfer short, which
                    # the client sees as fewer bytes than the Content-Length.
                    error_log.exception("download failed midway (RequestId %s)", request_id)
                    status, code = 500, VolcTosServerError.code
                finally:
                    await reader.close()
            else:
                raise NotFound()
        except Exception as exc:
            error = exc if isinstance(exc, VmsError) else outages.wire_error(exc)
            if error is None:
                error_log.exception("unexpected failure in %s (RequestId %s)", action, request_id)
                error = InternalError()
            status, code = error.http_status, error.code
            body = error_body(request_id, action, DEFAULT_REGION, error)
            await send_response(send, status, body, headers=error_headers(request_id, error))
        finally:
            log_request(request_id, action, "", status, code, time.perf_counter() - started)


def transfer_mounts(
    ingest: IngestService, body_timeout_seconds: float = BODY_IDLE_SECONDS
) -> list[tuple[str, TransferApp]]:
    app = TransferApp(ingest, body_timeout_seconds)
    return [(UPLOAD_PREFIX, app), (DOWNLOAD_PREFIX, app)]

"""Every error vmsres can answer with: one exception type per wire error code.

Raise the specific type where the failure is known (a parser, the signature verifier, a service
rule, a store lookup). Only the envelope layer turns an exception into a response; the Python
client maps a response back into the same type. ``when`` is the sentence docs/errors.md shows.
"""

from __future__ import annotations

from typing import ClassVar

ERRORS: dict[str, type[VmsError]] = {}


class VmsError(Exception):
    """Base of every wire error. ``code`` and ``http_status`` are the wire contract."""

    code: ClassVar[str] = ""
    http_status: ClassVar[int] = 400
    default_message: ClassVar[str] = ""
    when: ClassVar[str] = ""
    # Seconds a client should wait before trying again; the envelope sends it as Retry-After.
    retry_after_seconds: int | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code:
            if cls.code in ERRORS:
                raise TypeError(f"duplicate error code {cls.code}")
            ERRORS[cls.code] = cls

    def __init__(
        self, message: str | None = None, *, request_id: str = "", retry_after_seconds: int | None = None
    ) -> None:
        self.message = message if message is not None else self.default_message
        # Filled in by the client when the error came back over the wire.
        self.request_id = request_id
        if retry_after_seconds is not None:
            self.retry_after_seconds = retry_after_seconds
        super().__init__(self.message)

    def __str__(self) -> str:
        suffix = f" (RequestId {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{suffix}"


class ParameterError(VmsError):
    """An error about one named request parameter."""

    template: ClassVar[str] = "%s"

    def __init__(self, parameter: str, detail: str = "", *, request_id: str = "") -> None:
        self.parameter = parameter
        message = self.template % parameter
        if detail:
            message = f"{message} {detail}"
        super().__init__(message, request_id=request_id)


# --- Common codes, as the seed page's table lists them -------------------------------------


class MissingParameter(ParameterError):
    code = "MissingParameter"
    template = "The required parameter %s is missing."
    when = "A required parameter is absent (or null, or an empty string where a value is needed)."


class InvalidParameter(ParameterError):
    code = "InvalidParameter"
    template = "The specified parameter %s is invalid."
    when = (
        "A parameter has the wrong type, is out of its bounds or not one of its allowed values; "
        "also a body that is not valid UTF-8 JSON or form data (parameter `Body`), or a request "
        "head the HTTP parser refuses, e.g. NUL in a header or a doubled Content-Length "
        "(parameter `Request`); a FetchResource "
        "`Url` that is not http(s) or leads to a host that is not public (unless allowed with "
        "--fetch-allow-host); GetResourceDownloadUrl `Rendition=telephony` for a resource that has "
        "none (pending while ffmpeg is missing on the server, or ffmpeg could not convert it)."
    )


class OperationDenied(VmsError):
    code = "OperationDenied"
    default_message = "Operation is denied because the specified resource is in use."
    when = (
        "OpenUpdateResource or OpenDeleteResource on a resource leased as in use through the admin "
        "API (`POST /admin/v1/resources/{key}/lease`) until the lease expires or is released."
    )


class QuotaExceeded(ParameterError):
    code = "QuotaExceeded"
    template = "%s has exceeded the quota."
    when = (
        "OpenCreateTts, CommitResourceUpload or FetchResource would take the account past a quota: "
        "`ResourceCount` (--max-resources) or `StorageBytes` (--max-storage-bytes)."
    )


class IdempotentParameterMismatch(VmsError):
    code = "IdempotentParameterMismatch"
    default_message = "Parameters mismatch the previous request with a same ClientToken."
    when = (
        "A `ClientToken` used in the last 24 hours is sent again with different parameters or for "
        "another action."
    )


class DryRunOperation(VmsError):
    code = "DryRunOperation"
    default_message = "The request is validated by a dryrun operation."
    when = "`DryRun=true` and every check the real call makes passed; nothing was changed."


class MissingAction(VmsError):
    code = "MissingAction"
    default_message = "The request is missing an action."
    when = "The query string has no `Action`."


class InvalidAction(VmsError):
    code = "InvalidAction"
    default_message = "The specified action is invalid."
    when = "The `Action` is unknown, the `Version` is missing or not 2022-01-01, or the HTTP method is wrong."


class Throttling(VmsError):
    code = "Throttling"
    default_message = "The request is denied due to request throttling."
    when = (
        "The key's or the account's token bucket (--rate-per-key, --rate-per-account or the "
        "account's override) is empty; `Retry-After` says in how many seconds the bucket holds a "
        "token again."
    )


class SignatureNotMatch(VmsError):
    code = "SignatureNotMatch"
    http_status = 401
    default_message = "The request signature provided is incorrect."
    when = "The signature does not match the request and the key's SecretKey, or the scope is wrong."


class InvalidAccessKeyId(VmsError):
    code = "InvalidAccessKeyId"
    http_status = 403
    default_message = "The access key ID provided is not valid."
    when = "The AccessKey is unknown or disabled."


class AccessDenied(VmsError):
    code = "AccessDenied"
    http_status = 403
    default_message = "You are not authorized to perform this action."
    when = (
        "The key's account is disabled; or an upload or download URL (`/upload/...`, "
        "`/download/...`) whose token is forged, altered or expired."
    )


class InternalError(VmsError):
    code = "InternalError"
    http_status = 500
    default_message = "The request has failed due to an unknown error."
    when = "An unexpected failure inside vmsres; the log line of the RequestId has the details."


class ServiceUnavailable(VmsError):
    code = "ServiceUnavailable"
    http_status = 503
    default_message = "The request has failed due to a temporary failure of the server."
    when = (
        "The database or Redis (with rate limits on) cannot be reached right now, the SQLite "
        "store lacks a table or column it needs (changed by hand), the database "
        "connection was lost while committing (the change may or may not have been made: retry "
        "with the same `ClientToken`), or a request with the same `ClientToken` is still running "
        "after the repeat waited for it. Sent with `Retry-After`; retrying later may succeed. "
        "See [reliability.md](reliability.md)."
    )


class InsufficientStorage(VmsError):
    code = "InsufficientStorage"
    http_status = 507
    default_message = "The server's storage is full; the change was not made."
    when = (
        "A write found the disk of the database (SQLite, or PostgreSQL's own) or of the blob "
        "storage full; nothing was changed. Reads keep working; writes succeed again once space "
        "is freed. See [reliability.md](reliability.md)."
    )


# --- Gateway codes of Volcengine's common error pages ----------------------------------------


class MissingAuthenticationToken(VmsError):
    code = "MissingAuthenticationToken"
    http_status = 401
    default_message = "Request is missing Authentication Token."
    when = "The request has no `Authorization` header."


class InvalidAuthorization(VmsError):
    code = "InvalidAuthorization"
    http_status = 400
    default_message = "Invalid 'Authorization' header, Pls check authorization header."
    when = (
        "The `Authorization` header is not `HMAC-SHA256 Credential=AK/date/region/service/request, "
        "SignedHeaders=..., Signature=...`, or SignedHeaders lacks `x-date` or a listed header is absent."
    )


class MissingSignature(VmsError):
    code = "MissingSignature"
    http_status = 401
    default_message = "The request is missing signature."
    when = "The `Authorization` header has no `Signature=`."


class MissingRequestInfo(ParameterError):
    code = "MissingRequestInfo"
    template = "The request is missing %s information."
    when = "The request has no `X-Date` header (or it is not `YYYYMMDDTHHMMSSZ`)."


class InvalidTimestamp(VmsError):
    code = "InvalidTimestamp"
    default_message = "The Signature of the request is expired."
    when = (
        "`X-Date` is more than 15 minutes away from the server's clock, or the credential scope's "
        "date is not the date of `X-Date`."
    )


class RequestEntityTooLarge(VmsError):
    code = "RequestEntityTooLarge"
    http_status = 413
    default_message = "The request body exceeds the size limit."
    when = "The request body is larger than the wire endpoint's cap (1 MiB)."


class RequestHeaderFieldsTooLarge(VmsError):
    code = "RequestHeaderFieldsTooLarge"
    http_status = 431
    default_message = "The request header fields are too large."
    when = (
        "The request head is larger than 16 KiB (`--max-header-bytes`) or has more than 100 header "
        "fields (`--max-header-count`); the connection is closed after the answer."
    )


class RequestUriTooLong(VmsError):
    code = "RequestURITooLong"
    http_status = 414
    default_message = "The request target is too long."
    when = "The request's path and query string together are longer than 8 KiB."


class RequestTimeout(VmsError):
    code = "RequestTimeout"
    http_status = 408
    default_message = "The request did not arrive in time."
    when = (
        "The request head did not arrive within 10 seconds of its first byte "
        "(`--header-timeout`), its body paused for 30 seconds (`--body-timeout`), or the whole "
        "body took longer than 10 times that (300 seconds by default)."
    )


class MethodNotAllowed(VmsError):
    code = "MethodNotAllowed"
    http_status = 405
    default_message = "The HTTP method is not allowed on this path."
    when = "A method other than GET or POST on `/`."


class NotFound(VmsError):
    code = "NotFound"
    http_status = 404
    default_message = "The requested path does not exist."
    when = "A path that vmsres does not serve."


# --- The voice-resource family's business codes (doc 6358/173282) ---------------------------


class ResourceKeyIsNotExist(VmsError):
    code = "RESOURCE_KEY_IS_NOT_EXIST"
    http_status = 404
    default_message = "The resource key does not exist."
    when = (
        "No resource with that ResourceKey belongs to the caller's account (another account's key included)."
    )


class ResourceKeyIsNone(VmsError):
    code = "RESOURCE_KEY_IS_NONE"
    default_message = "The resource key is empty."
    when = "`ResourceKey` is absent or empty."


class ResourceIsNone(VmsError):
    code = "RESOURCE_IS_NONE"
    http_status = 404
    default_message = "The resource is empty."
    when = "CommitResourceUpload names a FileName whose bytes were never uploaded (or whose upload expired)."


class ResourceNameIsNone(VmsError):
    code = "RESOURCE_NAME_IS_NONE"
    default_message = "The resource name is empty."
    when = "`Name` (or `FileName`) is absent or blank where a name is required."


class NoPermission(VmsError):
    code = "NO_PERMISSION"
    http_status = 403
    default_message = "No permission."
    when = (
        "Reserved: vmsres answers a foreign resource with RESOURCE_KEY_IS_NOT_EXIST instead, "
        "to reveal nothing."
    )


class ServerError(VmsError):
    code = "SERVER_ERROR"
    http_status = 500
    default_message = "Server error."
    when = "Reserved: vmsres reports unexpected failures as InternalError."


class UploadFileFail(VmsError):
    code = "UPLOAD_FILE_FAIL"
    default_message = "Uploading the file failed."
    when = "The upload could not be stored or read back."


class FileAnalyseError(VmsError):
    code = "FILE_ANALYSE_ERROR"
    default_message = "Only wav and mp3 files can be parsed."
    when = "The audio is not a decodable MP3 or WAV file, whatever its name says."


class ResourceKeyHaveTaskRunning(VmsError):
    code = "RESOURCE_KEY_HAVE_TASK_RUNING"
    default_message = "A task using this resource is running."
    when = "Reserved: vmsres answers a leased resource with OperationDenied."


class ResourceSizeOverLimit(VmsError):
    code = "RESOURCE_SIZE_OVER_LIMIT"
    default_message = "The resource is larger than 5 MB."
    when = "The audio file is larger than 5 MB (5,242,880 bytes)."


class AudioDurationOverLimit(VmsError):
    code = "AUDIO_DURATION_OVER_LIMIT"
    default_message = "The audio is longer than the server allows."
    when = (
        "The audio plays longer than the server's limit (600 seconds unless `--max-audio-duration` "
        "says otherwise); checked before any conversion."
    )


class EmptyResourceBody(VmsError):
    code = "EMPTY_RESOURCE_BODY"
    default_message = "The resource body is empty."
    when = "The uploaded or fetched file has no bytes, or the URL gave no body."


class UrlIsNone(VmsError):
    code = "URL_IS_NONE"
    default_message = "The URL is empty."
    when = "FetchResource without a `Url`."


class NotRepeatInvoke(VmsError):
    code = "NOT_REPET_INVOCK"
    default_message = "This call may not be repeated."
    when = "A FileName is already taken by a resource with different content, or an upload URL is used twice."


class VolcTosServerError(VmsError):
    code = "VOLC_TOS_SERVER_ERROR"
    http_status = 502
    default_message = "The object storage failed."
    when = "The blob storage (disk or S3) failed while storing or reading audio."


class RequestParametersError(VmsError):
    code = "RequestParametersError"
    default_message = "The request parameters are wrong."
    when = "Reserved: vmsres names the parameter with MissingParameter or InvalidParameter instead."

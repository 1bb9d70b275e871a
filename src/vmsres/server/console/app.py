"""The operator console at /console: server-rendered pages over AdminOps, behind the admin token."""

from __future__ import annotations

import os
from importlib import resources as package_files
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from vmsres.server.actions.records import china_time
from vmsres.server.admin.app import admin_token_matches
from vmsres.server.console.ops import (
    ConsoleOps,
    NoAudio,
    PreviewUnavailable,
    espeak_binary,
    template_parts,
)
from vmsres.server.console.session import (
    COOKIE,
    DEFAULT_SESSION_SECONDS,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SECRET_NAME,
    Session,
    Sessions,
    csrf_matches,
)
from vmsres.server.service.accounts import AccountError
from vmsres.server.service.admin import ADMIN_ERRORS, AdminOps, admin_resource_view
from vmsres.server.service.events import Actor
from vmsres.server.service.services import Services

PREFIX = "/console"
SESSION_SECONDS_ENV = "VMSRES_CONSOLE_SESSION_SECONDS"
REVIEWER = "console"
PAGE_SIZE = 20
QUEUE_LIMIT = 200
# Where a decision POST's outcome travels to the page it redirects to (comma-separated keys).
_OUTCOME_PARAMS = ("decided", "refused")
TYPES = {0: "audio", 1: "TTS", 2: "IVR"}
STATES = {0: "under review", 1: "approved", 2: "rejected"}
MAX_FORM_BYTES = 256 * 1024
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# Pages are scripts and styles from this origin only; audio comes from the console's own routes.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class LoginRequired(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


def _int_or_none(value: str | None, allowed: dict[int, str]) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise HTTPException(400, "not a number") from None
    if number not in allowed:
        raise HTTPException(400, "out of range")
    return number


def _session_seconds() -> int:
    raw = os.environ.get(SESSION_SECONDS_ENV)
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else DEFAULT_SESSION_SECONDS


def create_console_app(services: Services, token_sha256: str) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    templates = Environment(
        loader=PackageLoader("vmsres.server.console", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.globals.update(prefix=PREFIX, types=TYPES, states=STATES)
    # Same clock as CreateTime in the records, so the trail and the resource read alike.
    templates.filters["when"] = lambda t: china_time(int(t)) if t else ""
    ops = ConsoleOps(services)
    admin = AdminOps(services, Actor("admin", name=REVIEWER))
    expected_digest = token_sha256.encode()
    lifetime = _session_seconds()
    holder: dict[str, Sessions] = {}

    async def sessions() -> Sessions:
        # The key lives in the database so that every worker signs alike; read once per process.
        if "s" not in holder:
            value = await services.shared_secrets.get(SECRET_NAME)
            holder["s"] = Sessions(Sessions.derive_key(value, token_sha256), services.shared, lifetime)
        return holder["s"]

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        response = HTMLResponse(templates.get_template(name).render(**context), status_code=status)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-store"
        return response

    def cookie_args(request: Request) -> dict[str, Any]:
        return {
            "httponly": True,
            "samesite": "strict",
            "secure": request.url.scheme == "https",
            "path": PREFIX,
        }

    async def session_of(request: Request) -> Session:
        session = await (await sessions()).read(request.cookies.get(COOKIE), services.clock())
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        return session

    async def form_of(request: Request, session: Session | None) -> dict[str, list[str]]:
        """The POSTed form, after the CSRF check every state-changing request goes through."""
        origin = request.headers.get("origin")
        if origin and origin not in (f"{request.url.scheme}://{request.url.netloc}", "null"):
            raise HTTPException(403, "cross-origin form refused")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, "bad form") from None
        given = (form.get("csrf") or [""])[0]
        if session is not None and not (given and csrf_matches(session, given)):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")
        return form

    def first(form: dict[str, list[str]], name: str) -> str:
        return (form.get(name) or [""])[0].strip()

    @app.exception_handler(LoginRequired)
    async def to_login(_: Request, error: LoginRequired) -> Response:
        return RedirectResponse(f"{PREFIX}/login?next={quote(error.target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        return render("error.html", status=error.status_code, message=error.detail, session=None)

    # --- login --------------------------------------------------------------------------

    def safe_next(value: str) -> str:
        # Only paths inside the console: an open redirect would make the login page a phishing aid.
        if value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
            return value
        return f"{PREFIX}/review"

    async def login_page(request: Request, error: str = "", status: int = 200) -> Response:
        cookie, csrf = (await sessions()).login_form(services.clock())
        response = render(
            "login.html",
            status=status,
            session=None,
            csrf=csrf,
            error=error,
            next=safe_next(request.query_params.get("next", "")),
        )
        response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_FORM_SECONDS, **cookie_args(request))
        return response

    @app.get(PREFIX)
    @app.get(PREFIX + "/")
    async def home() -> Response:
        return RedirectResponse(f"{PREFIX}/review", status_code=303)

    @app.get(PREFIX + "/login")
    async def login_get(request: Request) -> Response:
        return await login_page(request)

    @app.post(PREFIX + "/login")
    async def login_post(request: Request) -> Response:
        form = await form_of(request, None)
        store = await sessions()
        if not store.check_login_form(
            request.cookies.get(LOGIN_COOKIE), first(form, "csrf"), services.clock()
        ):
            raise HTTPException(403, "the login form expired or was not sent by this page; reload it")
        if not admin_token_matches(first(form, "token"), expected_digest):
            return await login_page(request, "That is not the admin token.", status=401)
        cookie, _ = store.issue(services.clock())
        response = RedirectResponse(safe_next(first(form, "next")), status_code=303)
        response.set_cookie(COOKIE, cookie, max_age=store.lifetime_seconds, **cookie_args(request))
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @app.post(PREFIX + "/logout")
    async def logout(request: Request) -> Response:
        session = await session_of(request)
        await form_of(request, session)
        await (await sessions()).revoke(session, services.clock())
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # --- review queue ---------------------------------------------------------------------

    async def review_page(
        request: Request, session: Session, results: list[dict[str, Any]] | None = None, error: str = ""
    ) -> Response:
        account = request.query_params.get("account") or None
        type_ = _int_or_none(request.query_params.get("type"), TYPES)
        try:
            queue = await admin.review_queue(account, type_, QUEUE_LIMIT)
        except AccountError as exc:
            queue, error = [], str(exc)
        for item in queue:
            if item["Type"] == 1:
                item["Parts"] = template_parts(item.get("TtsTemplateContent", ""))
            else:
                # Fixtures make audio records without bytes; they get no player.
                row = await ops.resource_row(item["ResourceKey"])
                item["HasAudio"] = bool(row and row["blob_key"])
        return render(
            "review.html",
            session=session,
            active="review",
            queue=queue,
            accounts=await admin.list_accounts(),
            account=account or "",
            type=type_,
            results=results or [],
            error=error,
            espeak=espeak_binary() is not None,
            query=request.url.query,
        )

    @app.get(PREFIX + "/review")
    async def review_get(request: Request) -> Response:
        session = await session_of(request)
        return await review_page(request, session, results=await review_outcome(request))

    @app.post(PREFIX + "/review")
    async def review_post(request: Request) -> Response:
        session = await session_of(request)
        form = await form_of(request, session)
        keys = [k for k in form.get("keys", []) if k]
        decision = first(form, "decision")
        reason = first(form, "reason")
        if not keys:
            return await review_page(request, session, error="Select at least one resource.")
        if decision == "reject" and not reason:
            return await review_page(request, session, error="A rejection needs a reason.")
        if decision not in ("approve", "reject"):
            raise HTTPException(400, "decision must be approve or reject")
        results = await admin.review(keys, decision == "approve", reason or None, REVIEWER)
        # Post/Redirect/Get: the outcome goes into the address of a page that only reads, so a
        # reload shows it again instead of deciding again.
        outcome = [(k, v) for k, v in request.query_params.multi_items() if k not in _OUTCOME_PARAMS]
        for name, ok in (("decided", True), ("refused", False)):
            chosen = [r["ResourceKey"] for r in results if bool(r["Ok"]) is ok]
            if chosen:
                outcome.append((name, ",".join(chosen)))
        return RedirectResponse(f"{PREFIX}/review?{urlencode(outcome)}#results", status_code=303)

    async def review_outcome(request: Request) -> list[dict[str, Any]]:
        """The results a decision POST redirected with, as each resource stands now."""
        results: list[dict[str, Any]] = []
        for name in _OUTCOME_PARAMS:
            for key in (request.query_params.get(name) or "").split(",")[:QUEUE_LIMIT]:
                if not key:
                    continue
                row = await ops.resource_row(key)
                if row is None:
                    results.append({"ResourceKey": key, "Ok": False, "Error": "no such resource"})
                elif name == "decided":
                    results.append({"ResourceKey": key, "Ok": True, "State": row["state"]})
                else:
                    results.append(
                        {
                            "ResourceKey": key,
                            "Ok": False,
                            "State": row["state"],
                            "ReviewedBy": row["reviewed_by"] or "",
                            "ReviewedAt": row["reviewed_at"],
                        }
                    )
        return results

    # --- audio ----------------------------------------------------------------------------

    @app.get(PREFIX + "/audio/{resource_key}/{rendition}")
    async def audio(request: Request, resource_key: str, rendition: str) -> Response:
        await session_of(request)
        try:
            if rendition == "preview":
                data, content_type = await ops.tts_preview(resource_key), "audio/wav"
            elif rendition in ("original", "telephony"):
                data, content_type = await ops.audio(resource_key, rendition)
            else:
                raise HTTPException(404, "no such rendition")
        except NoAudio:
            raise HTTPException(404, "this resource has no such audio") from None
        except PreviewUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        return _ranged(request, data, content_type)

    # --- resources ------------------------------------------------------------------------

    @app.get(PREFIX + "/resources")
    async def resources_page(request: Request) -> Response:
        session = await session_of(request)
        q = request.query_params
        account = q.get("account", "")
        type_ = _int_or_none(q.get("type") or "1", TYPES)
        state = _int_or_none(q.get("state"), STATES)
        keyword = q.get("keyword", "").strip()[:128]
        page_number = max(1, int(q["page"])) if q.get("page", "").isdigit() else 1
        error = ""
        try:
            result = await ops.search(
                account or None, type_ or 0, state, keyword, PAGE_SIZE, (page_number - 1) * PAGE_SIZE
            )
            records, total, capped = result.records, result.total, result.capped
        except AccountError as exc:
            records, total, capped, error = [], 0, False, str(exc)
        params = {
            "account": account,
            "type": type_,
            "state": "" if state is None else state,
            "keyword": keyword,
        }
        pages = max(1, -(-total // PAGE_SIZE))
        return render(
            "resources.html",
            session=session,
            active="resources",
            records=records,
            total=total,
            capped=capped,
            page=page_number,
            pages=pages,
            accounts=await admin.list_accounts(),
            account=account,
            type=type_,
            state=state,
            keyword=keyword,
            error=error,
            prev_url=f"{PREFIX}/resources?" + urlencode({**params, "page": page_number - 1}),
            next_url=f"{PREFIX}/resources?" + urlencode({**params, "page": page_number + 1}),
        )

    @app.get(PREFIX + "/resources/{resource_key}")
    async def resource_detail(request: Request, resource_key: str) -> Response:
        session = await session_of(request)
        row = await ops.resource_row(resource_key)
        if row is None:
            raise HTTPException(404, f"no resource {resource_key}")
        resource = admin_resource_view(row)
        trail = await admin.audit(resource_key=resource_key, limit=200)
        deliveries = [
            d
            for d in await admin.deliveries(resource["Account"], limit=1000)
            if d["ResourceKey"] == resource_key
        ]
        if resource["Type"] == 1:
            resource["Parts"] = template_parts(resource.get("TtsTemplateContent", ""))
        return render(
            "resource.html",
            session=session,
            active="resources",
            r=resource,
            has_original=bool(row["blob_key"]),
            has_telephony=bool(row["rendition_key"]),
            trail=trail,
            deliveries=deliveries,
            espeak=espeak_binary() is not None,
        )

    # --- accounts and keys ----------------------------------------------------------------

    async def accounts_page(
        request: Request,
        session: Session,
        secret: dict[str, Any] | None = None,
        error: str = "",
        status: int = 200,
    ) -> Response:
        return render(
            "accounts.html",
            status=status,
            session=session,
            active="accounts",
            accounts=await admin.list_accounts(),
            keys=await admin.list_keys(),
            secret=secret,
            error=error,
        )

    @app.get(PREFIX + "/accounts")
    async def accounts_get(request: Request) -> Response:
        return await accounts_page(request, await session_of(request))

    @app.post(PREFIX + "/accounts")
    async def accounts_post(request: Request) -> Response:
        session = await session_of(request)
        form = await form_of(request, session)
        action = first(form, "action")
        # The secret is in this one response only: the page is not cached and not redirected to.
        try:
            if action == "create-account":
                await admin.create_account(first(form, "name"), first(form, "policy") or None)
                return await accounts_page(request, session)
            if action == "create-key":
                return await accounts_page(
                    request, session, secret=await admin.create_key(first(form, "account"))
                )
            access_key = first(form, "access_key")
            if action == "rotate-key":
                return await accounts_page(request, session, secret=await admin.rotate_key(access_key))
            if action in ("disable-key", "enable-key"):
                await admin.set_key_enabled(access_key, action == "enable-key")
                return await accounts_page(request, session)
        except ADMIN_ERRORS as exc:
            return await accounts_page(request, session, error=str(exc), status=400)
        raise HTTPException(400, "unknown action")

    # --- static files ---------------------------------------------------------------------

    static_root = package_files.files("vmsres.server.console") / "static"

    @app.get(PREFIX + "/static/{name}")
    async def static(name: str) -> Response:
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        if suffix not in STATIC_TYPES or "/" in name or name.startswith("."):
            raise HTTPException(404, "not found")
        file = static_root / name
        if not file.is_file():
            raise HTTPException(404, "not found")
        return Response(
            file.read_bytes(),
            media_type=STATIC_TYPES[suffix],
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    return app


def _ranged(request: Request, data: bytes, content_type: str) -> Response:
    """Whole bytes, or the one range asked for: media elements seek with Range requests."""
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    spec = request.headers.get("range", "")
    if spec.startswith("bytes=") and "," not in spec:
        start_text, _, end_text = spec[6:].partition("-")
        size = len(data)
        try:
            if start_text:
                start = int(start_text)
                end = min(int(end_text), size - 1) if end_text else size - 1
            else:
                start, end = max(0, size - int(end_text)), size - 1
        except ValueError:
            start, end = 0, -1
        if 0 <= start <= end < size:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return Response(data[start : end + 1], status_code=206, media_type=content_type, headers=headers)
        headers["Content-Range"] = f"bytes */{size}"
        return Response(b"", status_code=416, headers=headers)
    return Response(data, media_type=content_type, headers=headers)

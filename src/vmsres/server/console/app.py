"""The operator console at /console: server-rendered pages over AdminOps.

Operators log in with their personal token (service/operators.py); the admin token logs in the
break-glass admin. A reviewer sees the review queue, resources and audit trail; only admins see
accounts and keys. Every POST answers with a redirect (Post/Redirect/Get); what a page must show
once after it (a new SecretKey, a refusal) travels in a short-lived cookie sealed under the master
key for that session, never in the address.

Endpoints are module-level functions listed in ``routes``; what they share (services,
templates, sessions) is one ConsoleState on ``request.app.state.console``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import resources as package_files
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.routing import BaseRoute

from vmsres.protocol.records import ResourceState, ResourceType, labels
from vmsres.protocol.request_ids import new_request_id
from vmsres.server.admin.nul import RefuseNul, html_refusal
from vmsres.server.admin.tokens import admin_token_matches, client_address
from vmsres.server.console.ops import (
    MAX_MERGED_ROWS,
    ConsoleOps,
    NoAudio,
    PreviewUnavailable,
    espeak_binary,
    template_parts,
    waveform_svg,
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
from vmsres.server.masterkey import MasterKeyError
from vmsres.server.service import outages
from vmsres.server.service.accounts import AccountError
from vmsres.server.service.admin import (
    ADMIN_ERRORS,
    QUEUE_SORTS,
    AdminOps,
    QueueQueryError,
    admin_resource_view,
    audio_facts_view,
    decided_view,
)
from vmsres.server.service.events import Actor
from vmsres.server.service.logins import CONSOLE_DOOR, WINDOW_SECONDS, LoginGuard, Verdict
from vmsres.server.service.operators import BREAK_GLASS, ROLES
from vmsres.server.service.records import china_time
from vmsres.server.service.services import Services
from vmsres.server.settings import BULK_CONFIRM_ABOVE, DEFAULT_REJECT_REASONS, MAX_REASON_CHARS

PREFIX = "/console"
SESSION_SECONDS_ENV = "VMSRES_CONSOLE_SESSION_SECONDS"
# The audit trail's name for the console itself (failed logins have no one else to name).
CONSOLE_ACTOR = CONSOLE_DOOR.actor
# A flash (what one page shows once after a POST) is kept this long for its GET.
FLASH_COOKIE = "vmsres_console_flash"
FLASH_SECONDS = 120
# A form POSTed after its session ended is kept (sealed, like a flash) this long, so that its
# page can offer it again once its author has logged in again.
KEPT_COOKIE = "vmsres_console_kept"
KEPT_SECONDS = 30 * 60
_KEPT_CONTEXT = "vmsres:console-kept-form"
EXPIRED_NOTICE = "Your session expired; log in to continue."
# What the login page says when a form of that page is kept.
KEPT_NOTICES = {
    "review": "Your session expired; log in to continue — your selection and reason are kept.",
    "resource": "Your session expired; log in to continue — your reason is kept.",
    "accounts": "Your session expired; log in to continue — the new account's name and policy are kept.",
    "operators": "Your session expired; log in to continue — the new operator's name and role are kept.",
}
RESOURCE_KEY = re.compile(r"[0-9a-f]{32}")
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PAGE_SIZE = 20
# Review queue items per page; also the most keys one decision POST or confirmation takes.
QUEUE_PAGE_SIZE = 50
QUEUE_LIMIT = 200
# The longest address the bulk confirmation is redirected to; the transport refuses request
# targets above 8 KiB (414), and the browser adds nothing, so this leaves room to spare.
MAX_QUESTION_ADDRESS = 6 * 1024
# What the queue's address may hold: its filters, sort and page (kept across pages and decisions).
QUEUE_PARAMS = ("account", "type", "name", "older_than", "sort", "page")
# Where a preset reject reason and free text meet when both are given.
REASON_JOINER = ": "
# Where a decision POST's outcome travels to the page it redirects to (comma-separated keys).
_OUTCOME_PARAMS = ("decided", "refused")
TYPES = labels(ResourceType)
STATES = labels(ResourceState)
# CSS classes by State (state-reviewing, ...): the stylesheet names States, not wire numbers.
STATE_CLASSES = {int(state): f"state-{state.name.lower()}" for state in ResourceState}
MAX_FORM_BYTES = 256 * 1024
# A sealed cookie's most bytes: browsers keep at most 4096 for a cookie's name and value.
MAX_COOKIE_VALUE = 4000
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
    def __init__(self, target: str, expired: bool = False) -> None:
        self.target = target
        # The browser sent a session cookie that no longer opens: say so on the login page.
        self.expired = expired


def _int_or_none(value: str | None, allowed: dict[int, str], name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number not in allowed:
        # Names the parameter and what it may be: the value came from an address someone edited.
        choices = ", ".join(f"{k} ({label})" for k, label in allowed.items())
        shown = str(number) if number is not None else repr(value[:32])
        raise HTTPException(400, f"{name} {shown} is not one of {choices}")
    return number


def _session_seconds() -> int:
    raw = os.environ.get(SESSION_SECONDS_ENV)
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else DEFAULT_SESSION_SECONDS


def _templates() -> Environment:
    templates = Environment(
        loader=PackageLoader("vmsres.server.console", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.globals.update(
        prefix=PREFIX, types=TYPES, states=STATES, state_classes=STATE_CLASSES, TTS=ResourceType.TTS
    )
    # Same clock as CreateTime in the records, so the trail and the resource read alike.
    templates.filters["when"] = lambda t: china_time(int(t)) if t else ""
    templates.filters["clock"] = clock
    templates.filters["size"] = human_size
    return templates


def clock(milliseconds: int | None) -> str:
    """A duration as a player shows it, m:ss (h:mm:ss past an hour), tenths under 10 seconds."""
    if milliseconds is None:
        return "—"
    tenths = (int(milliseconds) + 50) // 100
    if tenths < 100:
        return f"0:{tenths // 10:02d}.{tenths % 10}"
    seconds = (int(milliseconds) + 500) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass
class ConsoleState:
    services: Services
    token_sha256: str
    # serve --reject-reasons: the reasons a reviewer picks from (free text is still allowed).
    reject_reasons: Sequence[str] = DEFAULT_REJECT_REASONS
    # serve --bulk-confirm-above: a decision on more resources than this is confirmed first.
    confirm_above: int = BULK_CONFIRM_ABOVE
    templates: Environment = field(default_factory=_templates)
    lifetime: int = field(default_factory=_session_seconds)
    _sessions: Sessions | None = None

    def __post_init__(self) -> None:
        self.ops = ConsoleOps(self.services)
        # Reading needs no name; every change goes through admin_for(session).
        self.reader = AdminOps(self.services, CONSOLE_ACTOR)
        self.expected_digest = self.token_sha256.encode()
        # Failed logins count with the admin API's wrong Bearer tokens (service/logins.py).
        self.logins = LoginGuard(self.services, CONSOLE_DOOR)

    def admin_for(self, session: Session) -> AdminOps:
        """AdminOps that audit as who is logged in: ``operator:NAME``, or ``admin:console``
        for the break-glass admin."""
        if session.is_operator:
            return AdminOps(self.services, Actor("operator", name=session.name))
        return AdminOps(self.services, Actor("admin", name="console"))

    async def sessions(self) -> Sessions:
        # The key lives in the database so that every worker signs alike; read once per process.
        if self._sessions is None:
            value = await self.services.shared_secrets.get(SECRET_NAME)
            self._sessions = Sessions(
                Sessions.derive_key(value, self.token_sha256), self.services.shared, self.lifetime
            )
        return self._sessions

    def now(self) -> float:
        return self.services.clock()


def _state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    template = _state(request).templates.get_template(name)
    response = HTMLResponse(template.render(**context), status_code=status)
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
    state = _state(request)
    session = await (await state.sessions()).read(request.cookies.get(COOKIE), state.now())
    # An operator disabled, deleted or given a new token since the login: the session ends now.
    if session is not None and session.is_operator:
        operator = await state.services.operators.current(session.name, session.fingerprint)
        session = None if operator is None else dataclasses.replace(session, role=operator.role)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # A POST came from a page that had a session; a GET may carry the cookie that ended.
        raise LoginRequired(target, expired=request.method == "POST" or COOKIE in request.cookies)
    return session


def require_admin(session: Session, what: str = "accounts and keys") -> None:
    if not session.is_admin:
        raise HTTPException(403, f"{session.name} is a reviewer: {what} are for admins")


def _flash_context(session: Session) -> str:
    # Bound to the session: a flash cookie copied into another session does not open.
    return f"vmsres:console-flash:{session.sid}"


def _sealed_to_fit(request: Request, data: dict[str, Any], context: str) -> str:
    """``data`` sealed for a cookie: when that is more than a browser keeps, the reason is cut to
    the longest start that fits, then the list of keys, and ``cut`` says what each had (a kept
    form the browser silently dropped would be work lost without a word)."""
    keyring = _state(request).services.events.keyring

    def seal(value: dict[str, Any]) -> str:
        return keyring.encrypt(orjson.dumps(value).decode(), context)

    sealed = seal(data)
    cut: dict[str, int] = {}
    for name in ("reason", "preset", "keys"):
        whole = data.get(name)
        if len(sealed) <= MAX_COOKIE_VALUE or not whole:
            continue
        cut[name] = len(whole)
        # The longest start of this field that fits (sealing is cheap; a dozen tries at most).
        low, high = 0, len(whole) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if len(seal({**data, name: whole[:middle], "cut": cut})) <= MAX_COOKIE_VALUE:
                low = middle
            else:
                high = middle - 1
        data = {**data, name: whole[:low], "cut": cut}
        sealed = seal(data)
    return sealed


def cut_notice(shown: dict[str, Any]) -> str:
    """What a kept or refused form lost to the cookie's size, for its page to say."""
    cut = shown.get("cut")
    if not isinstance(cut, dict):
        return ""
    said = []
    if "reason" in cut:
        said.append(
            f"Only the first {len(str(shown.get('reason', '')))} of the {cut['reason']} characters of "
            "your reason were kept; check it before sending."
        )
    if "keys" in cut:
        said.append(f"Only {len(shown.get('keys') or [])} of the {cut['keys']} selected resources were kept.")
    if "preset" in cut:
        said.append("The preset reason was too long to keep; pick it again.")
    return " ".join(said)


def flash(request: Request, response: Response, session: Session, data: dict[str, Any]) -> None:
    """Give the page a redirect leads to something to show once: a short-lived cookie, sealed
    under the master key (so every worker opens it and the browser cannot read it)."""
    sealed = _sealed_to_fit(request, data, _flash_context(session))
    response.set_cookie(FLASH_COOKIE, sealed, max_age=FLASH_SECONDS, **cookie_args(request))


def take_flash(request: Request, session: Session) -> dict[str, Any]:
    """What the request's flash cookie holds for this session ({} for none or a foreign one)."""
    sealed = request.cookies.get(FLASH_COOKIE)
    if not sealed:
        return {}
    keyring = _state(request).services.events.keyring
    try:
        data = orjson.loads(keyring.decrypt(sealed, _flash_context(session)))
    except (MasterKeyError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def shown_once(request: Request, response: Response) -> Response:
    """The page that showed a flash drops it: a reload shows the page without it."""
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    return response


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


def _login_address(error: LoginRequired) -> str:
    expired = "&expired=1" if error.expired else ""
    return f"{PREFIX}/login?next={quote(error.target, safe='')}{expired}"


async def to_login(_: Request, error: LoginRequired) -> Response:
    return RedirectResponse(_login_address(error), status_code=303)


async def http_error(request: Request, error: HTTPException) -> Response:
    heading = {403: "Not allowed", 404: "Not found"}.get(error.status_code, "")
    return render(
        request, "error.html", status=error.status_code, message=error.detail, session=None, heading=heading
    )


# --- login ------------------------------------------------------------------------------


def safe_next(value: str) -> str:
    # Only paths inside the console: an open redirect would make the login page a phishing aid.
    if value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/review"


async def login_page(
    request: Request, error: str = "", status: int = 200, next_target: str | None = None
) -> Response:
    """The login form; ``next_target`` is where a failed attempt was going (kept for the retry)."""
    state = _state(request)
    cookie, csrf = (await state.sessions()).login_form(state.now())
    notice = ""
    if request.query_params.get("expired"):
        notice = KEPT_NOTICES.get(str(_take_kept(request).get("page")), EXPIRED_NOTICE)
    response = render(
        request,
        "login.html",
        status=status,
        session=None,
        csrf=csrf,
        error=error,
        notice=notice,
        next=safe_next(request.query_params.get("next", "") if next_target is None else next_target),
    )
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_FORM_SECONDS, **cookie_args(request))
    return response


async def home() -> Response:
    return RedirectResponse(f"{PREFIX}/review", status_code=303)


async def login_get(request: Request) -> Response:
    return await login_page(request)


def throttled_page(request: Request) -> Response:
    response = render(
        request,
        "error.html",
        status=429,
        session=None,
        heading="Too many failed logins",
        message="Too many failed logins from here or with this token; try again later.",
    )
    response.headers["Retry-After"] = str(WINDOW_SECONDS)
    return response


async def login_post(request: Request) -> Response:
    state = _state(request)
    form = await form_of(request, None)
    store = await state.sessions()
    if not store.check_login_form(request.cookies.get(LOGIN_COOKIE), first(form, "csrf"), state.now()):
        raise HTTPException(403, "the login form expired or was not sent by this page; reload it")
    token = first(form, "token")
    operator = None
    admin = admin_token_matches(token, state.expected_digest)
    if not admin:
        operator = await state.services.operators.authenticate(token)
    address = client_address(request)
    verdict = await state.logins.judge(address, token, admin or operator is not None)
    if verdict is Verdict.THROTTLED:
        await state.logins.record(verdict, address)
        return throttled_page(request)
    if verdict is Verdict.FAILED:
        await state.logins.record(verdict, address)
        return await login_page(
            request,
            "That is not an operator token or the admin token.",
            status=401,
            next_target=first(form, "next"),
        )
    if operator is None:
        name, role, fingerprint, actor = BREAK_GLASS, "admin", "", Actor("admin", name="console")
    else:
        name, role, fingerprint = operator.name, operator.role, operator.fingerprint
        actor = Actor("operator", name=operator.name)
    await state.logins.record(verdict, address, name=name)
    await state.services.events.audit(actor, "ConsoleLogin", None, new_request_id(), "ok")
    cookie, _ = store.issue(state.now(), name, role, fingerprint)
    response = RedirectResponse(safe_next(first(form, "next")), status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=store.lifetime_seconds, **cookie_args(request))
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


async def logout(request: Request) -> Response:
    state = _state(request)
    session = await session_of(request)
    await form_of(request, session)
    await (await state.sessions()).revoke(session, state.now())
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# --- review queue -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueView:
    """The queue as the address gives it: filters, sort and page (kept by every link and form)."""

    account: str
    type: int | None
    name: str
    older_than: str
    sort: str
    page: int

    @classmethod
    def of(cls, request: Request) -> QueueView:
        q = request.query_params
        sort = q.get("sort", "") or "oldest"
        if sort not in QUEUE_SORTS:
            raise HTTPException(400, f"sort must be one of {', '.join(QUEUE_SORTS)}")
        page = q.get("page", "")
        return cls(
            q.get("account", ""),
            _int_or_none(q.get("type"), TYPES, "type"),
            q.get("name", "").strip()[:128],
            q.get("older_than", "").strip()[:16],
            sort,
            max(1, min(int(page), 1_000_000 // QUEUE_PAGE_SIZE)) if page.isdigit() else 1,
        )

    def params(self, **changes: Any) -> dict[str, Any]:
        """The address's parameters, with ``changes`` (a new page, another account...); empty
        ones are left out, so addresses stay short."""
        values = {
            "account": self.account,
            "type": "" if self.type is None else self.type,
            "name": self.name,
            "older_than": self.older_than,
            "sort": "" if self.sort == "oldest" else self.sort,
            "page": "" if self.page == 1 else self.page,
            **changes,
        }
        return {k: v for k, v in values.items() if v not in ("", None)}

    def address(self, path: str = "/review", **changes: Any) -> str:
        params = self.params(**changes)
        return f"{PREFIX}{path}" + (f"?{urlencode(params)}" if params else "")

    @property
    def filtered(self) -> bool:
        return bool(self.account or self.type is not None or self.name or self.older_than)


async def review_page(
    request: Request,
    session: Session,
    results: list[dict[str, Any]] | None = None,
    error: str = "",
    kept: dict[str, Any] | None = None,
) -> Response:
    """A page of the queue; ``kept`` is a form to offer again (its ``keys`` ticked, its
    ``reason`` and ``preset`` filled)."""
    state = _state(request)
    view = QueueView.of(request)
    empty: dict[str, Any] = {"Items": [], "Total": 0, "QueueTotal": 0, "ByAccount": [], "ByType": []}
    try:
        answer = await state.reader.review_queue_page(
            account=view.account or None,
            type_=view.type,
            name=view.name or None,
            older_than=view.older_than or None,
            sort=view.sort,
            offset=(view.page - 1) * QUEUE_PAGE_SIZE,
            limit=QUEUE_PAGE_SIZE,
        )
    except (AccountError, QueueQueryError) as exc:
        answer, error = empty, str(exc)
    queue = answer["Items"]
    for item in queue:
        if item["Type"] == ResourceType.TTS:
            item["Parts"] = template_parts(item.get("TtsTemplateContent", ""))
        else:
            # Fixtures make audio records without bytes; they get no player.
            row = await state.ops.resource_row(item["ResourceKey"])
            item["HasAudio"] = bool(row and row["blob_key"])
    total = answer["Total"]
    pages = max(1, -(-total // QUEUE_PAGE_SIZE))
    first_shown = (view.page - 1) * QUEUE_PAGE_SIZE + 1
    kept = kept or {}
    return render(
        request,
        "review.html",
        session=session,
        active="review",
        queue=queue,
        total=total,
        queue_total=answer["QueueTotal"],
        by_account=answer["ByAccount"],
        by_type=answer["ByType"],
        first_shown=first_shown,
        last_shown=first_shown + len(queue) - 1,
        page=view.page,
        pages=pages,
        view=view,
        sorts=QUEUE_SORTS,
        accounts=await state.reader.list_accounts(),
        results=results or [],
        error=error,
        espeak=espeak_binary() is not None,
        query=urlencode(view.params()),
        picked={str(k) for k in kept.get("keys", [])},
        reason=str(kept.get("reason", "")),
        preset=str(kept.get("preset", "")),
        reasons=state.reject_reasons,
        confirm_above=state.confirm_above,
    )


async def review_get(request: Request) -> Response:
    session = await session_of(request)
    shown = take_flash(request, session)
    kept = _take_kept(request, "review")
    page = await review_page(
        request,
        session,
        results=await _review_outcome(request),
        error=" ".join(p for p in (str(shown.get("error", "")), cut_notice(kept or shown)) if p),
        kept=kept or shown,
    )
    return offered_once(request, shown_once(request, page), kept)


def _kept_form(form: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "keys": [k for k in form.get("keys", []) if k][:QUEUE_LIMIT],
        "reason": first(form, "reason")[:MAX_REASON_CHARS],
        "preset": first(form, "preset")[:MAX_REASON_CHARS],
    }


async def _keep_for_login(request: Request, page: str, target: str, kept: dict[str, Any]) -> Response:
    """A form POSTed after its session ended: nothing is done; what was filled in is sealed
    into a short-lived cookie and the login leads back to ``target``, whose page offers it
    again (never sends it by itself). An empty form is not kept."""
    response = RedirectResponse(_login_address(LoginRequired(target, expired=True)), status_code=303)
    if not any(kept.values()):
        return response
    sealed = _sealed_to_fit(request, {**kept, "page": page}, _KEPT_CONTEXT)
    response.set_cookie(KEPT_COOKIE, sealed, max_age=KEPT_SECONDS, **cookie_args(request))
    return response


def _take_kept(request: Request, page: str | None = None) -> dict[str, Any]:
    """The kept form (of ``page``, when given); {} for none, another page's or a forged one."""
    sealed = request.cookies.get(KEPT_COOKIE)
    if not sealed:
        return {}
    try:
        data = orjson.loads(_state(request).services.events.keyring.decrypt(sealed, _KEPT_CONTEXT))
    except (MasterKeyError, ValueError):
        return {}
    if not isinstance(data, dict) or (page is not None and data.get("page") != page):
        return {}
    return data


def offered_once(request: Request, response: Response, kept: dict[str, Any]) -> Response:
    """The page that offered a kept form drops it."""
    if kept:
        response.delete_cookie(KEPT_COOKIE, path=PREFIX)
    return response


def _review_address(request: Request, outcome: list[tuple[str, str]], path: str = "/review") -> str:
    """The queue's address as the request had it (filters, sort, page), with ``outcome``."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k in QUEUE_PARAMS]
    return f"{PREFIX}{path}?{urlencode(kept + outcome)}"


def reject_reason(request: Request, form: dict[str, list[str]]) -> str:
    """The reason a form gives: a preset reason and free text joined (``preset: text``) when
    both are given, else whichever is. A preset must be one of the configured list."""
    preset, text = first(form, "preset"), first(form, "reason")
    if preset and preset not in _state(request).reject_reasons:
        raise HTTPException(400, "that preset reason is not in the list; reload the page")
    reason = REASON_JOINER.join(part for part in (preset, text) if part)
    if len(reason) > MAX_REASON_CHARS:
        raise HTTPException(400, f"a reason is at most {MAX_REASON_CHARS} characters")
    return reason


async def review_post(request: Request) -> Response:
    """A decision from the queue: the ticked items (or the one whose own button was pressed,
    ``one=approve:KEY``). Above --bulk-confirm-above keys nothing is decided until the form comes
    back from the confirmation page with ``confirm=yes``."""
    try:
        session = await session_of(request)
    except LoginRequired:
        kept = _kept_form(await form_of(request, None))
        return await _keep_for_login(request, "review", _review_address(request, []), kept)
    form = await form_of(request, session)
    # A key ticked twice (the confirmation's list and a stale page) is one resource.
    keys = list(dict.fromkeys(k for k in form.get("keys", []) if k))
    decision = first(form, "decision")
    one = first(form, "one")
    if one:
        decision, _, key = one.partition(":")
        keys = [key] if key else []
    if decision not in ("approve", "reject"):
        raise HTTPException(400, "decision must be approve or reject")
    if len(keys) > QUEUE_LIMIT:
        raise HTTPException(400, f"at most {QUEUE_LIMIT} resources are decided at once")
    reason = reject_reason(request, form)
    refusal = "Select at least one resource." if not keys else ""
    if not refusal and decision == "reject" and not reason:
        refusal = "A rejection needs a reason."
    if refusal:
        response = RedirectResponse(_review_address(request, []), status_code=303)
        # The refused form comes back as it was sent: the reviewer fixes it, not retypes it.
        flash(request, response, session, {"error": refusal, **_kept_form(form), "keys": keys})
        return response
    if len(keys) > _state(request).confirm_above and first(form, "confirm") != "yes":
        # Post/Redirect/Get to the question; what it asks about travels in its address.
        asked = [("decision", decision), ("keys", ",".join(keys))]
        asked += [(name, first(form, name)) for name in ("preset", "reason") if first(form, name)]
        question = _review_address(request, asked, "/review/confirm")
        if len(question.encode()) <= MAX_QUESTION_ADDRESS:
            return RedirectResponse(question, status_code=303)
        # Too long for an address (a long reason in Chinese is nine bytes a character there): the
        # question answers the POST itself. Asking decides nothing, so a reload only asks again.
        return await _confirm_page(
            request, session, decision, keys, first(form, "preset"), first(form, "reason")
        )
    admin = _state(request).admin_for(session)
    # An operator decides under their own name (AdminOps enforces it); the break-glass admin
    # as "admin".
    results = await admin.review(keys, decision == "approve", reason or None, session.name)
    # Post/Redirect/Get: the outcome goes into the address of a page that only reads, so a
    # reload shows it again instead of deciding again.
    return RedirectResponse(_review_address(request, _outcome(results)) + "#results", status_code=303)


def _outcome(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    outcome: list[tuple[str, str]] = []
    for name, ok in (("decided", True), ("refused", False)):
        chosen = [r["ResourceKey"] for r in results if bool(r["Ok"]) is ok]
        if chosen:
            outcome.append((name, ",".join(chosen)))
    return outcome


async def review_confirm(request: Request) -> Response:
    """ "Approve 57 resources?": a bulk decision above the threshold, asked before it is done.
    Only reads; its Confirm button sends the decision again with confirm=yes."""
    session = await session_of(request)
    q = request.query_params
    keys = q.get("keys", "").split(",")
    return await _confirm_page(
        request, session, q.get("decision", ""), keys, q.get("preset", ""), q.get("reason", "")
    )


async def _confirm_page(
    request: Request, session: Session, decision: str, keys: list[str], preset: str, reason: str
) -> Response:
    if decision not in ("approve", "reject"):
        raise HTTPException(400, "decision must be approve or reject")
    keys = list(dict.fromkeys(k for k in keys if RESOURCE_KEY.fullmatch(k)))[:QUEUE_LIMIT]
    if not keys:
        raise HTTPException(400, "no resources to decide")
    names = []
    for key in keys:
        row = await _state(request).ops.resource_row(key)
        names.append({"key": key, "name": row["name"] if row else "(no such resource)"})
    return render(
        request,
        "review_confirm.html",
        session=session,
        active="review",
        decision=decision,
        items=names,
        preset=preset,
        reason=reason,
        combined=REASON_JOINER.join(p for p in (preset, reason) if p),
        post_to=_review_address(request, []),
        back_to=_review_address(request, []),
    )


async def _review_outcome(request: Request) -> list[dict[str, Any]]:
    """The results a decision POST redirected with, as each resource stands now."""
    ops = _state(request).ops
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
                results.append({"ResourceKey": key, "Ok": False, **decided_view(row)})
    return results


# --- audio --------------------------------------------------------------------------------


async def audio(request: Request, resource_key: str, rendition: str) -> Response:
    await session_of(request)
    ops = _state(request).ops
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


async def waveform(request: Request, resource_key: str) -> Response:
    """The waveform as an SVG image, drawn from the levels measured once and stored."""
    await session_of(request)
    levels = await _state(request).ops.waveform(resource_key)
    if levels is None:
        raise HTTPException(404, "this resource has no waveform")
    body = waveform_svg(levels).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {
        # Private (behind the login); revalidated by its ETag, since a waveform measured without
        # ffmpeg may be measured again once it is there.
        "Cache-Control": "private, no-cache",
        "ETag": etag,
        **SECURITY_HEADERS,
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="image/svg+xml", headers=headers)


# --- resources ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """The resources search as the address gives it (the page, its pager and its CSV export)."""

    account: str
    type: int | None  # None: all types
    state: int | None
    keyword: str

    @classmethod
    def of(cls, request: Request) -> SearchFilters:
        q = request.query_params
        # No type at all is the wire API's default (TTS); an empty one is "All types".
        type_ = _int_or_none(q.get("type", "1"), TYPES, "type")
        return cls(
            q.get("account", ""),
            type_,
            _int_or_none(q.get("state"), STATES, "state"),
            q.get("keyword", "").strip()[:128],
        )

    def params(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "type": "" if self.type is None else self.type,
            "state": "" if self.state is None else self.state,
            "keyword": self.keyword,
        }


async def resources_page(request: Request) -> Response:
    session = await session_of(request)
    state = _state(request)
    filters = SearchFilters.of(request)
    q = request.query_params
    page_number = max(1, int(q["page"])) if q.get("page", "").isdigit() else 1
    error = ""
    try:
        result = await state.ops.search(
            filters.account or None,
            filters.type,
            filters.state,
            filters.keyword,
            PAGE_SIZE,
            (page_number - 1) * PAGE_SIZE,
        )
        records, total, capped = result.records, result.total, result.capped
    except AccountError as exc:
        records, total, capped, error = [], 0, False, str(exc)
    params = filters.params()
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "resources.html",
        session=session,
        active="resources",
        records=records,
        total=total,
        capped=capped,
        page=page_number,
        pages=pages,
        accounts=await state.reader.list_accounts(),
        account=filters.account,
        type=filters.type,
        state=filters.state,
        keyword=filters.keyword,
        error=error,
        max_rows=MAX_MERGED_ROWS,
        csv_url=f"{PREFIX}/resources.csv?" + urlencode(params),
        prev_url=f"{PREFIX}/resources?" + urlencode({**params, "page": page_number - 1}),
        next_url=f"{PREFIX}/resources?" + urlencode({**params, "page": page_number + 1}),
    )


CSV_COLUMNS = ("ResourceKey", "Name", "Account", "Type", "State", "CreateTime", "Remark")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


async def resources_csv(request: Request) -> Response:
    """The search's matches (the newest MAX_MERGED_ROWS of them) as CSV, in the page's order."""
    await session_of(request)
    filters = SearchFilters.of(request)
    try:
        result = await _state(request).ops.search(
            filters.account or None, filters.type, filters.state, filters.keyword, MAX_MERGED_ROWS, 0
        )
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in result.records:
        row = {**record, "Type": TYPES[record["Type"]], "State": STATES[record["State"]]}
        writer.writerow([csv_cell(row.get(column)) for column in CSV_COLUMNS])
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="resources.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def goto_resource(request: Request) -> Response:
    """The header's go-to box: a ResourceKey (any case, spaces trimmed) opens its page."""
    await session_of(request)
    key = request.query_params.get("key", "").strip().lower()
    if not RESOURCE_KEY.fullmatch(key):
        raise HTTPException(400, "A ResourceKey is 32 hexadecimal digits (0-9, a-f).")
    if await _state(request).ops.resource_row(key) is None:
        raise HTTPException(404, f"No resource has the ResourceKey {key}.")
    return RedirectResponse(f"{PREFIX}/resources/{key}", status_code=303)


async def resource_detail(request: Request, resource_key: str) -> Response:
    session = await session_of(request)
    state = _state(request)
    row = await state.ops.resource_row(resource_key)
    if row is None:
        raise HTTPException(404, f"No resource has the ResourceKey {resource_key}.")
    resource = admin_resource_view(row)
    trail = await state.reader.audit(resource_key=resource_key, limit=200)
    # Deliveries name the account's webhook URL: admins' business, as in the admin API.
    deliveries = [
        d
        for d in (await state.reader.deliveries(resource["Account"], limit=1000) if session.is_admin else [])
        if d["ResourceKey"] == resource_key
    ]
    preview_ms = None
    if resource["Type"] == ResourceType.TTS:
        resource["Parts"] = template_parts(resource.get("TtsTemplateContent", ""))
        # Rendered now if not cached (once per text and options), so the page can say how long
        # the preview is before it is played.
        preview_ms = await state.ops.tts_preview_duration_ms(resource_key)
    # Measured here the first time for a resource stored before levels were (then stored).
    has_waveform = await state.ops.waveform(resource_key) is not None
    if has_waveform:
        row = await state.ops.resource_row(resource_key) or row
        resource = {**resource, **audio_facts_view(row)}
    shown = take_flash(request, session)
    kept = _take_kept(request, "resource")
    if kept.get("key") != resource_key:
        kept = {}
    filled = kept or shown
    page = render(
        request,
        "resource.html",
        has_waveform=has_waveform,
        preview_ms=preview_ms,
        session=session,
        active="resources",
        r=resource,
        has_original=bool(row["blob_key"]),
        has_telephony=bool(row["rendition_key"]),
        trail=trail,
        deliveries=deliveries,
        espeak=espeak_binary() is not None,
        under_review=resource["State"] == ResourceState.REVIEWING,
        reasons=state.reject_reasons,
        decided=shown.get("decided"),
        error=" ".join(p for p in (str(shown.get("error", "")), cut_notice(filled)) if p),
        reason=str(filled.get("reason", "")),
        preset=str(filled.get("preset", "")),
    )
    return offered_once(request, shown_once(request, page), kept)


async def resource_decide(request: Request, resource_key: str) -> Response:
    """Approve or reject one resource from its page (compare-and-set like the queue: one decided
    meanwhile is refused and the page says by whom and when)."""
    target = f"{PREFIX}/resources/{resource_key}"
    try:
        session = await session_of(request)
    except LoginRequired:
        form = await form_of(request, None)
        kept = {"reason": first(form, "reason")[:MAX_REASON_CHARS], "preset": first(form, "preset")}
        if any(kept.values()):
            kept["key"] = resource_key
        return await _keep_for_login(request, "resource", target, kept)
    form = await form_of(request, session)
    decision = first(form, "decision")
    if decision not in ("approve", "reject"):
        raise HTTPException(400, "decision must be approve or reject")
    reason = reject_reason(request, form)
    response = RedirectResponse(target + "#decision", status_code=303)
    if decision == "reject" and not reason:
        kept = {"reason": first(form, "reason"), "preset": first(form, "preset")}
        flash(request, response, session, {"error": "A rejection needs a reason.", **kept})
        return response
    admin = _state(request).admin_for(session)
    (result,) = await admin.review([resource_key], decision == "approve", reason or None, session.name)
    if result["Ok"]:
        flash(request, response, session, {"decided": {"Ok": True, "State": result["State"]}})
    else:
        flash(
            request, response, session, {"decided": {k: v for k, v in result.items() if k != "ResourceKey"}}
        )
    return response


# --- accounts and keys --------------------------------------------------------------------


async def accounts_page(
    request: Request,
    session: Session,
    secret: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
    kept: dict[str, str] | None = None,
) -> Response:
    reader = _state(request).reader
    return render(
        request,
        "accounts.html",
        status=status,
        session=session,
        active="accounts",
        accounts=await reader.list_accounts(),
        keys=await reader.list_keys(),
        secret=secret,
        error=error,
        kept=kept or {},
    )


async def accounts_get(request: Request) -> Response:
    session = await session_of(request)
    require_admin(session)
    kept = _take_kept(request, "accounts")
    shown = take_flash(request, session) or kept
    page = await accounts_page(
        request,
        session,
        secret=shown.get("secret"),
        error=str(shown.get("error", "")),
        status=400 if shown.get("error") else 200,
        kept={"name": str(shown.get("name", "")), "policy": str(shown.get("policy", ""))},
    )
    return offered_once(request, shown_once(request, page), kept)


async def accounts_post(request: Request) -> Response:
    try:
        session = await session_of(request)
    except LoginRequired:
        form = await form_of(request, None)
        kept = {"name": first(form, "name")[:64], "policy": first(form, "policy")[:32]}
        if first(form, "action") != "create-account":
            kept = {}
        return await _keep_for_login(request, "accounts", f"{PREFIX}/accounts", kept)
    require_admin(session)
    form = await form_of(request, session)
    admin = _state(request).admin_for(session)
    action = first(form, "action")
    shown: dict[str, Any] = {}
    try:
        if action == "create-account":
            await admin.create_account(first(form, "name"), first(form, "policy") or None)
        elif action == "create-key":
            shown["secret"] = await admin.create_key(first(form, "account"))
        elif action == "rotate-key":
            shown["secret"] = await admin.rotate_key(first(form, "access_key"))
        elif action in ("disable-key", "enable-key"):
            await admin.set_key_enabled(first(form, "access_key"), action == "enable-key")
        else:
            raise HTTPException(400, "unknown action")
    except ADMIN_ERRORS as exc:
        shown["error"] = str(exc)
        if action == "create-account":
            # Refused: the form comes back filled in as it was sent.
            shown["name"], shown["policy"] = first(form, "name"), first(form, "policy")
    # Post/Redirect/Get: a new SecretKey is shown by the GET once (a flash cookie sealed for this
    # session, kept FLASH_SECONDS), never put in the address; a reload shows the page without it.
    response = RedirectResponse(f"{PREFIX}/accounts", status_code=303)
    if shown:
        flash(request, response, session, shown)
    return response


# --- operators ----------------------------------------------------------------------------

OPERATOR_ACTIONS = ("create", "disable", "enable", "rotate", "delete")


async def operators_get(request: Request) -> Response:
    """Operators (never their tokens); a new or rotated token is shown by this GET once."""
    session = await session_of(request)
    require_admin(session, "operators")
    kept = _take_kept(request, "operators")
    shown = take_flash(request, session) or kept
    error = str(shown.get("error", ""))
    page = render(
        request,
        "operators.html",
        status=400 if error else 200,
        session=session,
        active="operators",
        operators=await _state(request).reader.list_operators(),
        roles=ROLES,
        issued=shown.get("issued"),
        done=str(shown.get("done", "")),
        error=error,
        kept={"name": str(shown.get("name", "")), "role": str(shown.get("role", ""))},
    )
    return offered_once(request, shown_once(request, page), kept)


async def operators_post(request: Request) -> Response:
    try:
        session = await session_of(request)
    except LoginRequired:
        form = await form_of(request, None)
        kept = {"name": first(form, "name")[:64], "role": first(form, "role")[:16]}
        if first(form, "action") != "create":
            kept = {}
        return await _keep_for_login(request, "operators", f"{PREFIX}/operators", kept)
    require_admin(session, "operators")
    form = await form_of(request, session)
    action, name = first(form, "action"), first(form, "name")
    if action not in OPERATOR_ACTIONS:
        raise HTTPException(400, "unknown action")
    admin = _state(request).admin_for(session)
    shown: dict[str, Any] = {}
    try:
        if action == "create":
            made = await admin.create_operator(name, first(form, "role"))
            shown["issued"] = {"Name": made["Name"], "Role": made["Role"], "Token": made["Token"]}
        elif action == "rotate":
            made = await admin.rotate_operator(name)
            shown["issued"] = {"Name": made["Name"], "Role": made["Role"], "Token": made["Token"]}
        elif action == "delete":
            await admin.delete_operator(name)
            shown["done"] = f"Operator {name} deleted; their sessions have ended."
        else:
            await admin.set_operator_enabled(name, action == "enable")
            ended = "; their sessions have ended" if action == "disable" else ""
            shown["done"] = f"Operator {name} {action}d{ended}."
    except ADMIN_ERRORS as exc:
        shown = {"error": str(exc)}
        if action == "create":
            # Refused: the form comes back filled in as it was sent.
            shown["name"], shown["role"] = name[:64], first(form, "role")[:16]
    # Post/Redirect/Get, as for keys: a token is shown by the GET once (a flash sealed for this
    # session), never put in the address; a reload shows the page without it.
    response = RedirectResponse(f"{PREFIX}/operators", status_code=303)
    flash(request, response, session, shown)
    return response


# --- static files -------------------------------------------------------------------------

STATIC_ROOT = package_files.files("vmsres.server.console") / "static"


async def static(name: str) -> Response:
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix not in STATIC_TYPES or "/" in name or name.startswith("."):
        raise HTTPException(404, "not found")
    file = STATIC_ROOT / name
    if not file.is_file():
        raise HTTPException(404, "not found")
    return Response(
        file.read_bytes(),
        media_type=STATIC_TYPES[suffix],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


routes: list[BaseRoute] = [
    APIRoute(PREFIX, home, methods=["GET"]),
    APIRoute(PREFIX + "/", home, methods=["GET"]),
    APIRoute(PREFIX + "/login", login_get, methods=["GET"]),
    APIRoute(PREFIX + "/login", login_post, methods=["POST"]),
    APIRoute(PREFIX + "/logout", logout, methods=["POST"]),
    APIRoute(PREFIX + "/review", review_get, methods=["GET"]),
    APIRoute(PREFIX + "/review", review_post, methods=["POST"]),
    APIRoute(PREFIX + "/review/confirm", review_confirm, methods=["GET"]),
    APIRoute(PREFIX + "/audio/{resource_key}/{rendition}", audio, methods=["GET"]),
    APIRoute(PREFIX + "/waveform/{resource_key}.svg", waveform, methods=["GET"]),
    APIRoute(PREFIX + "/resources", resources_page, methods=["GET"]),
    APIRoute(PREFIX + "/resources.csv", resources_csv, methods=["GET"]),
    APIRoute(PREFIX + "/goto", goto_resource, methods=["GET"]),
    APIRoute(PREFIX + "/resources/{resource_key}", resource_detail, methods=["GET"]),
    APIRoute(PREFIX + "/resources/{resource_key}/decide", resource_decide, methods=["POST"]),
    APIRoute(PREFIX + "/accounts", accounts_get, methods=["GET"]),
    APIRoute(PREFIX + "/accounts", accounts_post, methods=["POST"]),
    APIRoute(PREFIX + "/operators", operators_get, methods=["GET"]),
    APIRoute(PREFIX + "/operators", operators_post, methods=["POST"]),
    APIRoute(PREFIX + "/static/{name}", static, methods=["GET"]),
]


async def dependency_failed(request: Request, error: Exception) -> Response:
    answer = outages.wire_error(error)
    assert answer is not None  # registered for outages.OUTAGES only
    page = render(request, "error.html", status=answer.http_status, message=answer.message, session=None)
    if answer.retry_after_seconds is not None:
        page.headers["Retry-After"] = str(answer.retry_after_seconds)
    return page


exception_handlers: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    LoginRequired: to_login,
    HTTPException: http_error,
    **{outage: dependency_failed for outage in outages.OUTAGES},
}


def create_console_app(
    services: Services,
    token_sha256: str,
    reject_reasons: Sequence[str] = DEFAULT_REJECT_REASONS,
    confirm_above: int = BULK_CONFIRM_ABOVE,
) -> FastAPI:
    app = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        routes=routes,
        exception_handlers=exception_handlers,
    )
    app.add_middleware(RefuseNul, refusal=html_refusal)
    app.state.console = ConsoleState(services, token_sha256, tuple(reject_reasons), confirm_above)
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

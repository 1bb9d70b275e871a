"""Operator actions shared by the admin API and the local CLI; every change lands in the audit trail.

Results are plain JSON-ready dicts in the admin API's shapes, so the CLI prints the same thing
whether it works on a store directly or talks to a server's admin API.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from vmsres.protocol.records import ResourceState, ResourceType, wire_values
from vmsres.protocol.request_ids import new_request_id
from vmsres.server.service.accounts import AccountError, NotFoundError
from vmsres.server.service.events import (
    Actor,
    AuditContext,
    WebhookError,
    check_webhook_secret,
    check_webhook_url,
)
from vmsres.server.service.limits import UNLIMITED, LimitError, check_rate_text
from vmsres.server.service.operators import FIXTURE_REVIEWER, operator_view
from vmsres.server.service.records import resource_record
from vmsres.server.service.resources import AlreadyDecided, ReviewError, new_resource_key
from vmsres.server.service.services import Services
from vmsres.server.store.database import Executor, Row
from vmsres.server.store.resources import QUEUE_ORDERS, QueueFilter

MAX_LIST = 1000
# The review queue's pages (review_queue_page): how deep an offset may go, the sorts, and the
# units an age ("older than") is written in.
MAX_QUEUE_OFFSET = 1_000_000
QUEUE_SORTS: tuple[str, ...] = tuple(QUEUE_ORDERS)
# Submit times a query may name (year 5138): a database integer holds them, whatever is sent.
MAX_EPOCH_SECONDS = 10**11
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE = re.compile(r"(\d{1,9})\s*([smhd]?)")


class FixtureError(ValueError):
    """A fixtures file that cannot be loaded."""


class QueueQueryError(ValueError):
    """A review queue query with a value out of its bounds (the admin API answers 400)."""


def parse_age(text: str) -> int:
    """Seconds from an age such as ``90m``, ``2h``, ``7d`` or ``45s`` (a bare number: seconds)."""
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise QueueQueryError(
            f"older_than {text!r} is not an age: a whole number with s, m, h or d (e.g. 30m, 2h, 7d)"
        )
    return int(match[1]) * AGE_UNITS[match[2] or "s"]


def account_view(row: Row) -> dict[str, Any]:
    return {"Name": row["name"], "Enabled": bool(row["enabled"]), "ReviewPolicy": row["review_policy"]}


def key_view(row: Row) -> dict[str, Any]:
    return {"AccessKey": row["access_key"], "Account": row["account_name"], "Enabled": bool(row["enabled"])}


def decided_view(row: Row) -> dict[str, Any]:
    """Where a resource's review stands: its State, who decided it and when (empty while undecided)."""
    return {"State": row["state"], "ReviewedBy": row["reviewed_by"] or "", "ReviewedAt": row["reviewed_at"]}


def admin_resource_view(row: Row) -> dict[str, Any]:
    return {
        **resource_record(row),
        "Account": row["account_name"],
        **decided_view(row),
        **audio_facts_view(row),
    }


def audio_facts_view(row: Row) -> dict[str, Any]:
    """What was measured of the audio (admin/operations.py AUDIO_FACTS); all None for TTS."""
    audio = row["type"] != ResourceType.TTS
    get = row.get
    return {
        "Codec": get("codec"),
        "SampleRate": get("sample_rate"),
        "Channels": get("channels"),
        "SizeBytes": get("size_bytes"),
        "DurationMs": get("duration_ms"),
        "PeakDbfs": get("peak_dbfs"),
        "LoudnessLufs": get("loudness_lufs"),
        "TruePeakDbtp": get("true_peak_dbtp"),
        "SilenceShare": get("silence_share"),
        "LevelsPending": bool(get("levels_pending")) if audio else None,
    }


def audit_view(row: Row) -> dict[str, Any]:
    return {
        "Id": row["id"],
        "At": row["at"],
        "Actor": row["actor"],
        "Account": row["account_name"],
        "AccessKey": row["access_key"],
        "Action": row["action"],
        "ResourceKey": row["resource_key"],
        "RequestId": row["request_id"],
        "Outcome": row["outcome"],
        "Detail": row["detail"],
    }


def delivery_view(row: Row) -> dict[str, Any]:
    return {
        "Id": row["id"],
        "EventId": row["event_id"],
        "EventType": row["event_type"],
        "Account": row["account_name"],
        "ResourceKey": row["resource_key"],
        "Url": row["url"],
        "State": row["state"],
        "Attempts": row["attempts"],
        "NextAttemptMs": row["next_attempt_ms"],
        "LastStatus": row["last_status"],
        "LastError": row["last_error"],
        "CreatedAt": row["created_at"],
        "DeliveredAt": row["delivered_at"],
    }


MAX_LEASE_SECONDS = 7 * 24 * 3600
# Admin API field -> accounts column.
_LIMIT_FIELDS = {
    "RatePerKey": "rate_per_key",
    "RatePerAccount": "rate_per_account",
    "MaxResources": "max_resources",
    "MaxStorageBytes": "max_storage_bytes",
}


def limits_view(row: Row) -> dict[str, Any]:
    return {"Account": row["name"], **{field: row[column] for field, column in _LIMIT_FIELDS.items()}}


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIST))


class AdminOps:
    def __init__(self, services: Services, actor: Actor) -> None:
        self.services = services
        self.actor = actor

    @contextlib.asynccontextmanager
    async def _audited(
        self, action: str, resource: str | None = None, account: str | None = None
    ) -> AsyncIterator[Executor]:
        """One change in one transaction with its "ok" audit row, under a fresh request id.

        The body makes its change with the transaction it is given, raising when no row changed
        (the row counts decide), so the "ok" row exists exactly when the change does. A refusal
        or failure rolls everything back and is recorded after the rollback.
        """
        request_id = new_request_id()
        actor = Actor(self.actor.kind, account or self.actor.account_name, None, self.actor.name)
        events = self.services.events
        try:
            async with self.services.db.transaction() as tx:
                yield tx
                await events.audit(actor, action, resource, request_id, "ok", executor=tx)
        except Exception as error:
            await events.audit(actor, action, resource, request_id, type(error).__name__, str(error)[:500])
            raise
        # A change that queued a webhook delivery: it goes out without waiting for a poll.
        events.notify()

    # --- accounts -------------------------------------------------------------------------

    async def list_accounts(self) -> list[dict[str, Any]]:
        return [account_view(r) for r in await self.services.accounts.list_accounts()]

    async def create_account(self, name: str, review_policy: str | None = None) -> dict[str, Any]:
        async with self._audited("CreateAccount", account=name) as tx:
            await self.services.accounts.create_account(name, tx)
            if review_policy is not None:
                await self.services.accounts.set_review_policy(name, review_policy, tx)
            row = await self.services.accounts.account(name, tx)
        return account_view(row)

    async def set_review_policy(self, name: str, policy: str | None) -> dict[str, Any]:
        async with self._audited("SetReviewPolicy", account=name) as tx:
            await self.services.accounts.set_review_policy(name, policy, tx)
            row = await self.services.accounts.account(name, tx)
        return account_view(row)

    async def set_webhook(self, name: str, url: str | None, secret: str | None = None) -> dict[str, Any]:
        """Set (or with url None, remove) the account's webhook; a missing secret is generated
        and returned this once."""
        async with self._audited("SetWebhook", account=name) as tx:
            if url is not None:
                check_webhook_url(url)
                secret = check_webhook_secret(secret or secrets.token_urlsafe(32))
            account = await self.services.accounts.account(name, tx)
            await self.services.events.set_webhook(
                account["id"], url, secret if url else None, self.services.now(), tx
            )
        return {"Account": name, "Url": url, "Secret": secret if url else None}

    async def get_webhook(self, name: str) -> dict[str, Any]:
        account = await self.services.accounts.account(name)
        return {"Account": name, "Url": await self.services.events.webhook_url(account["id"])}

    async def reset_account(self, name: str) -> dict[str, Any]:
        async with self._audited("ResetAccount", account=name) as tx:
            account = await self.services.accounts.account(name, tx)
            # Upload URLs first: one issued before the reset cannot commit into the empty library.
            await self.services.ingest.forget_account_uploads(account["id"], tx)
            keys = await self.services.resources.reset_account(account["id"], name, tx)
        return {"Account": name, "DeletedResourceKeys": keys}

    async def reset_every_account(self) -> dict[str, Any]:
        """Test control: every account's library emptied, as reset_account does; accounts and
        keys stay."""
        names = [row["name"] for row in await self.services.accounts.list_accounts()]
        deleted: list[str] = []
        for name in names:
            deleted += (await self.reset_account(name))["DeletedResourceKeys"]
        return {"Accounts": names, "DeletedResourceKeys": deleted}

    # --- limits and leases ------------------------------------------------------------------

    async def get_limits(self, name: str) -> dict[str, Any]:
        row = await self.services.accounts.account(name)
        return limits_view(row)

    async def set_limits(self, name: str, limits: Mapping[str, Any]) -> dict[str, Any]:
        """Per-account overrides; a field left out is unchanged, null returns it to the default."""
        async with self._audited("SetLimits", account=name) as tx:
            # Only the fields given are written, so concurrent changes of other fields stand.
            current: dict[str, Any] = {}
            for field_name, column in _LIMIT_FIELDS.items():
                if field_name not in limits:
                    continue
                value = limits[field_name]
                if column.startswith("rate"):
                    try:
                        value = check_rate_text(value)
                    except LimitError as error:
                        raise AccountError(str(error)) from None
                elif value is not None and (not isinstance(value, int) or value < UNLIMITED):
                    raise AccountError(f"{field_name} is a count >= 0, -1 (unlimited) or null")
                current[column] = value
            row = await self.services.accounts.account(name, tx)
            await self.services.resources.set_limits(row["id"], current, tx)
            row = await self.services.accounts.account(name, tx)
        return limits_view(row)

    async def lease(self, resource_key: str, seconds: int, holder: str) -> dict[str, Any]:
        if not 1 <= seconds <= MAX_LEASE_SECONDS:
            raise AccountError(f"a lease lasts 1 to {MAX_LEASE_SECONDS} seconds")
        async with self._audited("Lease", resource=resource_key) as tx:
            row = await self.services.resources.lease(resource_key, holder, seconds, tx=tx)
        return {
            "ResourceKey": resource_key,
            "Account": row["account_name"],
            "Holder": holder,
            "ExpiresAt": row["expires_at"],
        }

    async def release(self, resource_key: str) -> dict[str, Any]:
        async with self._audited("Release", resource=resource_key) as tx:
            released = await self.services.resources.release(resource_key, tx)
        return {"ResourceKey": resource_key, "Released": released}

    async def leases(self, account: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.services.resources.active_leases(account, _limit(limit))
        return [
            {
                "ResourceKey": r["resource_key"],
                "Account": r["account_name"],
                "Holder": r["holder"],
                "CreatedAt": r["created_at"],
                "ExpiresAt": r["expires_at"],
            }
            for r in rows
        ]

    # --- keys -----------------------------------------------------------------------------

    async def list_keys(self, account: str | None = None) -> list[dict[str, Any]]:
        return [key_view(r) for r in await self.services.accounts.list_keys(account)]

    async def create_key(self, account: str) -> dict[str, Any]:
        async with self._audited("CreateKey", account=account) as tx:
            access_key, secret_key = await self.services.accounts.create_key(account, tx=tx)
        return {"AccessKey": access_key, "SecretKey": secret_key}

    async def set_key_enabled(self, access_key: str, enabled: bool) -> dict[str, Any]:
        action = "EnableKey" if enabled else "DisableKey"
        async with self._audited(action, resource=access_key) as tx:
            await self.services.accounts.set_key_enabled(access_key, enabled, tx)
        return {"AccessKey": access_key, "Enabled": enabled}

    async def rotate_key(self, access_key: str) -> dict[str, Any]:
        async with self._audited("RotateKey", resource=access_key) as tx:
            secret_key = await self.services.accounts.rotate_key(access_key, tx)
        return {"AccessKey": access_key, "SecretKey": secret_key}

    async def delete_key(self, access_key: str) -> dict[str, Any]:
        async with self._audited("DeleteKey", resource=access_key) as tx:
            await self.services.accounts.delete_key(access_key, tx)
        return {"AccessKey": access_key, "Deleted": True}

    # --- resources and review -------------------------------------------------------------

    async def list_resources(
        self,
        account: str | None = None,
        type_: int | None = None,
        state: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        rows = await self.services.resources.list_any(account, type_, state, _limit(limit))
        return [admin_resource_view(r) for r in rows]

    async def review_queue(
        self, account: str | None = None, type_: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return await self.list_resources(account, type_, ResourceState.REVIEWING, limit)

    async def review_queue_page(
        self,
        account: str | None = None,
        type_: int | None = None,
        name: str | None = None,
        older_than: str | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
        sort: str = "oldest",
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        """A page of the resources under review with the exact total matching the filters, and
        the whole queue's counts per account and per Type (filters do not change those: they are
        what a reviewer picks a filter from).

        ``older_than`` (an age, parse_age) and ``created_after``/``created_before`` (epoch
        seconds, both ends included) filter on when a resource was submitted; ``name`` is a
        case-insensitive substring of its Name.
        """
        if type_ is not None and type_ not in wire_values(ResourceType):
            raise QueueQueryError(f"type must be one of {wire_values(ResourceType)}, not {type_}")
        if sort not in QUEUE_SORTS:
            raise QueueQueryError(f"sort must be one of {', '.join(QUEUE_SORTS)}, not {sort!r}")
        if not 1 <= limit <= MAX_LIST:
            raise QueueQueryError(f"limit must be from 1 to {MAX_LIST}, not {limit}")
        if not 0 <= offset <= MAX_QUEUE_OFFSET:
            raise QueueQueryError(f"offset must be from 0 to {MAX_QUEUE_OFFSET}, not {offset}")
        for label, value in (("created_after", created_after), ("created_before", created_before)):
            if value is not None and not 0 <= value <= MAX_EPOCH_SECONDS:
                raise QueueQueryError(f"{label} is epoch seconds from 0 to {MAX_EPOCH_SECONDS}, not {value}")
        if name is not None and len(name) > 256:
            raise QueueQueryError("name is a substring of at most 256 characters")
        created_to = created_before
        if older_than:
            cutoff = int(self.services.now()) - parse_age(older_than)
            created_to = cutoff if created_to is None else min(created_to, cutoff)
        where = QueueFilter(
            account_name=account or None,
            type=type_,
            name_folded=(name or "").strip().casefold() or None,
            created_from=created_after,
            created_to=created_to,
        )
        rows, total, counts = await self.services.resources.queue(where, sort, offset, limit)
        by_account: dict[str, int] = {}
        by_type: dict[int, int] = {}
        for row in counts:
            by_account[row["account_name"]] = by_account.get(row["account_name"], 0) + row["n"]
            by_type[row["type"]] = by_type.get(row["type"], 0) + row["n"]
        return {
            "Total": total,
            "Offset": offset,
            "Limit": limit,
            "Sort": sort,
            "Items": [admin_resource_view(r) for r in rows],
            "QueueTotal": sum(by_type.values()),
            "ByAccount": [{"Account": a, "Count": n} for a, n in sorted(by_account.items())],
            "ByType": [{"Type": t, "Count": n} for t, n in sorted(by_type.items())],
        }

    async def get_resource(self, resource_key: str) -> dict[str, Any]:
        row = await self.services.resources.find(resource_key)
        if row is None:
            raise NotFoundError(f"no resource {resource_key}")
        return admin_resource_view(row)

    async def review(
        self,
        resource_keys: Sequence[str],
        approve: bool,
        reason: str | None,
        reviewer: str,
        force: bool = False,
    ) -> list[dict[str, Any]]:
        """Decide one or many; each key gets its own outcome (one unknown key fails only itself).

        Only a resource under review is decided; an already decided one answers Ok false with the
        decision that stands, unless ``force`` re-decides it (the audit row says forced over what).
        """
        if not approve and not (reason and reason.strip()):
            raise ReviewError("a rejection needs a reason")
        action = "Approve" if approve else "Reject"
        if self.actor.kind == "operator" and self.actor.name:
            # An operator decides under their own name, whatever a client says, and ReviewedBy is
            # that name alone (operator names have no colon, so it reads apart from "auto:RULE").
            reviewed_by = self.actor.name
        else:
            reviewed_by = f"reviewer:{reviewer}"
        actor = Actor(self.actor.kind, self.actor.account_name, None, self.actor.name)
        results: list[dict[str, Any]] = []
        for key in resource_keys:
            request_id = new_request_id()
            try:
                # The "ok" audit row is written in the deciding transaction, only when it decided.
                row = await self.services.resources.review(
                    key, approve, reason, reviewed_by, force, AuditContext(actor, request_id, action)
                )
            except Exception as error:
                await self.services.events.audit(
                    actor, action, key, request_id, type(error).__name__, str(error)[:500]
                )
                if isinstance(error, AlreadyDecided):
                    results.append(
                        {"ResourceKey": key, "Ok": False, "Error": str(error), **decided_view(error.row)}
                    )
                elif isinstance(error, ReviewError):
                    results.append({"ResourceKey": key, "Ok": False, "Error": str(error)})
                else:
                    raise
            else:
                result: dict[str, Any] = {"ResourceKey": key, "Ok": True, "State": row["state"]}
                if force:
                    result["Forced"] = True
                results.append(result)
        return results

    async def force_state(self, resource_key: str, state: int, reason: str | None) -> dict[str, Any]:
        """Test control: put a resource in any State, whatever the policy said."""
        async with self._audited("ForceState", resource=resource_key) as tx:
            row = await self.services.resources.set_state(resource_key, state, reason, "forced:admin", tx)
        return admin_resource_view(row)

    # --- trails ---------------------------------------------------------------------------

    async def audit(
        self,
        account: str | None = None,
        resource_key: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        rows = await self.services.events.audit_trail(account, resource_key, action, _limit(limit))
        return [audit_view(r) for r in rows]

    async def deliveries(
        self, account: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        rows = await self.services.events.deliveries(account, state, _limit(limit))
        return [delivery_view(r) for r in rows]

    # --- fixtures -------------------------------------------------------------------------

    async def load_fixtures(self, data: Any) -> dict[str, Any]:
        async with self._audited("LoadFixtures") as tx:
            return await load_fixtures(self.services, data, tx)

    # --- operators ------------------------------------------------------------------------

    async def list_operators(self) -> list[dict[str, Any]]:
        return [operator_view(r) for r in await self.services.operators.list()]

    async def create_operator(self, name: str, role: str) -> dict[str, Any]:
        """The new operator with their token: in this answer only."""
        async with self._audited("CreateOperator", resource=f"operator:{name}"[:64]) as tx:
            row, token = await self.services.operators.create(name, role, tx)
        return {**operator_view(row), "Token": token}

    async def set_operator_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        action = "EnableOperator" if enabled else "DisableOperator"
        async with self._audited(action, resource=f"operator:{name}"[:64]) as tx:
            row = await self.services.operators.set_enabled(name, enabled, tx)
        return operator_view(row)

    async def rotate_operator(self, name: str) -> dict[str, Any]:
        """A new token (in this answer only); the old one and its sessions stop working at once."""
        async with self._audited("RotateOperator", resource=f"operator:{name}"[:64]) as tx:
            row, token = await self.services.operators.rotate(name, tx)
        return {**operator_view(row), "Token": token}

    async def delete_operator(self, name: str) -> dict[str, Any]:
        async with self._audited("DeleteOperator", resource=f"operator:{name}"[:64]) as tx:
            await self.services.operators.delete(name, tx)
        return {"Name": name, "Deleted": True}


def _field(record: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    value = record.get(name, default)
    if value is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    raise FixtureError(f"{name} must be {kind.__name__}, got {value!r}")


async def load_fixtures(services: Services, data: Any, tx: Executor | None = None) -> dict[str, Any]:
    """Accounts, keys, webhooks and resources with chosen States, all in one transaction (the
    caller's, or one of its own). Idempotent: an account, key or ResourceKey that exists already
    is left as it is, so a server can load the same file at every start."""
    if tx is None:
        async with services.db.transaction() as own:
            answer = await load_fixtures(services, data, own)
        services.events.notify()
        return answer
    if isinstance(data, list):
        data = {"Resources": data}
    if not isinstance(data, dict):
        raise FixtureError("a fixtures file holds an object (Accounts, Resources) or a list of resources")
    created_accounts: list[str] = []
    loaded: list[str] = []
    try:
        for account in data.get("Accounts") or []:
            name = _field(account, "Name", str, None)
            if not name:
                raise FixtureError("every account needs a Name")
            row, created = await services.accounts.ensure_account(name, tx)
            if created:
                created_accounts.append(name)
            policy = _field(account, "ReviewPolicy", str, None)
            if policy is not None:
                await services.accounts.set_review_policy(name, policy, tx)
            for key in account.get("Keys") or []:
                await services.accounts.ensure_key(name, str(key["AccessKey"]), str(key["SecretKey"]), tx)
            hook = account.get("Webhook")
            if hook:
                url = check_webhook_url(str(hook["Url"]))
                secret = check_webhook_secret(str(hook["Secret"]))
                await services.events.set_webhook(row["id"], url, secret, services.now(), tx)
        for record in data.get("Resources") or []:
            if not isinstance(record, dict):
                raise FixtureError("every resource is an object")
            loaded_key = await _load_resource(services, record, tx)
            if loaded_key is not None:
                loaded.append(loaded_key)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, FixtureError):
            raise
        raise FixtureError(f"bad fixture: {error}") from None
    return {"CreatedAccounts": created_accounts, "LoadedResourceKeys": loaded}


async def _load_resource(services: Services, record: Mapping[str, Any], tx: Executor) -> str | None:
    account_name = _field(record, "Account", str, "default")
    account, _ = await services.accounts.ensure_account(account_name, tx)
    key = _field(record, "ResourceKey", str, None) or new_resource_key()
    if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
        raise FixtureError(f"ResourceKey {key!r} is not 32 lowercase hex characters")
    if await services.resources.exists(key, tx):
        return None
    type_ = _field(record, "Type", int, ResourceType.TTS)
    state = _field(record, "State", int, ResourceState.APPROVED)
    if type_ not in wire_values(ResourceType):
        raise FixtureError(f"Type must be one of {wire_values(ResourceType)}")
    if state not in wire_values(ResourceState):
        raise FixtureError(f"State must be one of {wire_values(ResourceState)}")
    reason = _field(record, "RejectReason", str, None)
    name = _field(record, "Name", str, None)
    if not name:
        raise FixtureError("every resource needs a Name")
    now = services.now()
    values: dict[str, Any] = {
        "resource_key": key,
        "account_id": account["id"],
        "type": type_,
        "state": state,
        "name": name,
        "remark": _field(record, "Remark", str, ""),
        "suffix": _field(record, "Suffix", str, "" if type_ == ResourceType.TTS else ".mp3"),
        "duration": _field(record, "Duration", int, 0),
        "tts_content": _field(record, "TtsTemplateContent", str, "" if type_ == ResourceType.TTS else None),
        "tts_options": _field(record, "TtsOptions", str, "{}" if type_ == ResourceType.TTS else None),
        "reject_reason": reason if state == ResourceState.REJECTED else None,
        "reviewed_by": None if state == ResourceState.REVIEWING else FIXTURE_REVIEWER,
        "reviewed_at": None if state == ResourceState.REVIEWING else now,
        "created_at": _field(record, "CreateTime", int, now),
    }
    # Unless present: the same fixture loaded concurrently (another server starting) is that one.
    inserted = await services.resources.insert_and_announce(
        account["id"], account_name, values, tx=tx, unless_present=True
    )
    return key if inserted else None


ADMIN_ERRORS: tuple[type[Exception], ...] = (
    AccountError,
    ReviewError,
    WebhookError,
    FixtureError,
    QueueQueryError,
    ValueError,
)

"""``vmsres serve``: settings from the command line (and VMSRES_* variables), then the server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vmsres.cli.store import FAILURES, fail, settings_from
from vmsres.server import backends
from vmsres.server.admin.tokens import admin_token_digest
from vmsres.server.masterkey import MasterKeyError
from vmsres.server.serve import CannotListen, serve
from vmsres.server.service.limits import LimitError, parse_rate
from vmsres.server.service.operators import token_weakness
from vmsres.server.service.review import ReviewRules, load_rules_file, load_word_list
from vmsres.server.settings import MAX_REASON_CHARS, Settings

SERVE_FAILURES: tuple[type[Exception], ...] = (*FAILURES, CannotListen, ValueError)


def _rules(args: argparse.Namespace) -> dict[str, object]:
    rules = load_rules_file(Path(args.review_rules)) if args.review_rules else ReviewRules()
    data = rules.to_dict()
    if args.banned_words:
        data["banned_words"] = [*data["banned_words"], *load_word_list(Path(args.banned_words))]
    if args.banned_name_words:
        data["banned_name_words"] = [
            *data["banned_name_words"],
            *load_word_list(Path(args.banned_name_words)),
        ]
    for option in ("max_tts_chars", "min_audio_seconds", "max_audio_seconds", "name_pattern"):
        value = getattr(args, option)
        if value is not None:
            data[option] = value
    ReviewRules.from_dict(data)  # refuse a bad rule now, not in every worker
    return data


class ServeArgumentError(ValueError):
    """A `vmsres serve` option that cannot be used (an unreadable rules file, a bad rate)."""


def serve_settings(args: argparse.Namespace) -> Settings:
    """The Settings that `vmsres serve` ARGS stand for (also vmsres.testing's ``serve_args``)."""
    try:
        rules = _rules(args)
    except (OSError, ValueError) as error:
        raise ServeArgumentError(f"review rules: {error}") from None
    try:
        parse_rate(args.rate_per_key)
        parse_rate(args.rate_per_account)
    except LimitError as error:
        raise ServeArgumentError(str(error)) from None
    settings = settings_from(args)
    settings.host, settings.port, settings.workers = args.host, args.port, args.workers
    settings.review, settings.log_level = args.review, args.log_level
    settings.public_url, settings.fetch_allow_hosts = args.public_url, args.fetch_allow_host
    settings.gc_interval_seconds, settings.redis_url = args.gc_interval, args.redis_url
    settings.review_rules = rules
    if args.reject_reasons:
        try:
            reasons = load_word_list(Path(args.reject_reasons))
        except (OSError, UnicodeDecodeError) as error:
            raise ServeArgumentError(f"--reject-reasons: {error}") from None
        if not reasons:
            raise ServeArgumentError(f"--reject-reasons: {args.reject_reasons} lists no reason")
        if any(len(reason) > MAX_REASON_CHARS for reason in reasons):
            raise ServeArgumentError(f"--reject-reasons: a reason is at most {MAX_REASON_CHARS} characters")
        settings.reject_reasons = reasons
    settings.bulk_confirm_above = args.bulk_confirm_above
    if args.admin_token:
        weakness = token_weakness(args.admin_token)
        if weakness is not None:
            raise ServeArgumentError(f"--admin-token: {weakness}")
    settings.admin_token_sha256 = admin_token_digest(args.admin_token) if args.admin_token else None
    settings.forwarded_allow_ips = args.forwarded_allow_ips
    settings.fixtures, settings.webhook_poll_seconds = args.fixtures, args.webhook_poll
    settings.webhook_retry_base_seconds = args.webhook_retry_base
    settings.webhook_retry_max_seconds = args.webhook_retry_max
    settings.webhook_max_age_seconds = args.webhook_max_age
    settings.rate_per_key, settings.rate_per_account = args.rate_per_key, args.rate_per_account
    settings.max_resources, settings.max_storage_bytes = args.max_resources, args.max_storage_bytes
    settings.idempotency_hours = args.idempotency_hours
    settings.search_cache_mb = args.search_cache_mb
    settings.max_audio_duration_seconds = args.max_audio_duration
    settings.max_header_bytes, settings.max_header_count = args.max_header_bytes, args.max_header_count
    settings.header_timeout_seconds, settings.body_timeout_seconds = args.header_timeout, args.body_timeout
    return settings


def run_serve(args: argparse.Namespace) -> int:
    """Run a parsed ``vmsres serve`` (vmsres.cli parses the command line)."""
    try:
        settings = serve_settings(args)
    except ServeArgumentError as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return 2
    try:
        backends.check(settings)
        serve(settings)
    except MasterKeyError as error:
        print(f"vmsres: refusing to start: {error}", file=sys.stderr)
        return 2
    except SERVE_FAILURES as error:
        # Everything here fails before the server listens (a wrong setting, an unreachable
        # database, a taken port): one line, not a traceback.
        return fail(error)
    return 0

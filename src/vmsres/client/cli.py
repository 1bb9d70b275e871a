"""``vmsres res ...``: the voice-resource OpenAPI from the command line, against any endpoint.

Options come from vmsres.protocol.spec (names, help, choices, required), so the CLI accepts what the API
accepts. Exit status: 0 success; 1 the service (or the local check with the service's rules)
refused, with the error code and RequestId on stderr; 2 bad usage; 3 no answer (connection,
timeout, malformed response) or no credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vmsres.client.asynchronous import AsyncClient
from vmsres.client.core import DEFAULT_TIMEOUT_SECONDS, check_location
from vmsres.client.errors import ClientError
from vmsres.client.models import Resource, ResourceState, ResourceType, WireRecord, python_name
from vmsres.client.output import display_width, format_table, label
from vmsres.client.sync import Client
from vmsres.client.wire import DEFAULT_ENDPOINT, DEFAULT_REGION
from vmsres.protocol.errors import VmsError
from vmsres.protocol.spec import ACTIONS

ENDPOINT_ENV = "VMSRES_ENDPOINT"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_ANSWER = 0, 1, 2, 3
AUDIO_SUFFIXES = (".mp3", ".wav")
DEFAULT_CONCURRENCY = 4


# --- Building the parser from the spec --------------------------------------------------------


def _help(text: str, default: Any = None) -> str:
    text = text.replace("%", "%%")  # argparse formats help with %
    return f"{text} (default {default})" if default not in (None, "") else text


# Common extensions that make no sense for commands built from several calls.
_NOT_FOR_HELPERS = ("ClientToken", "DryRun")


def _spec_arguments(
    parser: argparse.ArgumentParser,
    action: str,
    *,
    positional: Iterable[str] = (),
    optional: Iterable[str] = (),
    skip: Iterable[str] = (),
) -> None:
    """One argument per parameter of ``action``: ``--tts-option`` for TtsOption, or a positional.

    ``optional`` relaxes a required parameter the command can do without (get's --type).
    """
    positional, optional, skip = set(positional), set(optional), set(skip)
    for param in ACTIONS[action].params:
        if param.name in skip:
            continue
        dest = python_name(param.name)
        kwargs: dict[str, Any] = {}
        if param.kind == "int":
            kwargs["type"] = int
            if param.choices is not None:
                kwargs["choices"] = param.choices
        if param.kind == "bool":
            # A flag; absent sends nothing, so the server's default applies.
            parser.add_argument(
                "--" + dest.replace("_", "-"),
                dest=dest,
                action="store_const",
                const=True,
                default=None,
                help=_help(param.doc),
            )
            continue
        if param.name in positional:
            parser.add_argument(dest, metavar=dest.upper(), help=_help(param.doc), **kwargs)
        else:
            required = param.required and param.name not in optional
            parser.add_argument(
                "--" + dest.replace("_", "-"),
                dest=dest,
                required=required,
                help=_help(param.doc, None if required else param.default),
                **kwargs,
            )


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        help=f"the service's URL (default ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT}); "
        "https://cloud-vms.volcengineapi.com is Volcengine's",
    )
    group.add_argument("--access-key", help="default $VOLC_ACCESSKEY, then ~/.volc/credentials")
    group.add_argument("--secret-key", help="default $VOLC_SECRETKEY, then ~/.volc/credentials")
    group.add_argument("--region", default=DEFAULT_REGION, help=f"signing region (default {DEFAULT_REGION})")
    group.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds per request (default 30)"
    )
    group.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="send parameters unchecked and let the service judge them",
    )
    common.add_argument("--json", action="store_true", help="print JSON (wire field names) for scripts")
    return common


def add_resource_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``res`` and its subcommands on the top-level ``vmsres`` parser."""
    res = subparsers.add_parser(
        "res", help="call the voice-resource OpenAPI of a vmsres server or of Volcengine"
    )
    commands = res.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    common = _connection_options()

    def command(name: str, action: str | None, text: str | None = None) -> argparse.ArgumentParser:
        description = text or (ACTIONS[action].doc if action else "")
        return commands.add_parser(
            name,
            parents=[common],
            help=description,
            description=f"{description} ({action})" if action else description,
        )

    listing = command("list", "QueryOpenGetResource")
    _spec_arguments(listing, "QueryOpenGetResource")
    listing.add_argument(
        "--all", action="store_true", help="page through every match; --limit is then the page size"
    )

    get = command("get", None, "Show one resource by its key (searches every type unless --type).")
    _spec_arguments(get, "OpenDeleteResource", positional=["ResourceKey"], skip=_NOT_FOR_HELPERS)
    _spec_arguments(
        get,
        "QueryOpenGetResource",
        optional=["Type"],
        skip=["Keyword", "State", "Limit", "Offset", *_NOT_FOR_HELPERS],
    )

    usable = command("usable", "QueryUsableResource")
    _spec_arguments(usable, "QueryUsableResource")
    usable.add_argument("--v2", action="store_true", help="use QueryUsableResourceV2 (GET)")

    create = command("create-tts", "OpenCreateTts")
    _spec_arguments(create, "OpenCreateTts")

    rename = command("rename", "OpenUpdateResource")
    _spec_arguments(rename, "OpenUpdateResource", positional=["ResourceKey", "Name"])

    delete = command("delete", "OpenDeleteResource")
    _spec_arguments(delete, "OpenDeleteResource", positional=["ResourceKey"])

    fetch = command("fetch", "FetchResource")
    _spec_arguments(fetch, "FetchResource", positional=["Url"])

    upload = command(
        "upload",
        None,
        "Upload MP3/WAV files (GetResourceUploadUrl, PUT, CommitResourceUpload). A file whose name "
        "is already committed is skipped, so an interrupted run can simply be repeated.",
    )
    upload.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders of .mp3/.wav files")
    # One token or dry run cannot stand for many files; upload is a helper over three actions.
    _spec_arguments(upload, "CommitResourceUpload", skip=["FileName", *_NOT_FOR_HELPERS])
    upload.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"files uploaded at once (default {DEFAULT_CONCURRENCY})",
    )


# --- Output -----------------------------------------------------------------------------------


def _resource_table(resources: Sequence[Resource]) -> str:
    rows = [
        (
            r.resource_key,
            r.name,
            label(ResourceType, r.type),
            label(ResourceState, r.state),
            r.duration,
            r.create_time,
        )
        for r in resources
    ]
    return format_table(rows, ("RESOURCE KEY", "NAME", "TYPE", "STATE", "DURATION", "CREATED"))


def _resource_details(resource: Resource) -> str:
    wire = resource.to_wire()
    width = max(display_width(k) for k in wire)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in wire.items() if v not in ("", None))


def _emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if args.json:
        if isinstance(data, WireRecord):
            data = data.to_wire()
        elif isinstance(data, tuple | list):
            data = [d.to_wire() if isinstance(d, WireRecord) else d for d in data]
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(human())


# --- Commands ---------------------------------------------------------------------------------


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "access_key": args.access_key,
        "secret_key": args.secret_key,
        "endpoint": args.endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT,
        "region": args.region,
        "timeout": args.timeout,
        "validate": args.validate,
    }


def _spec_values(args: argparse.Namespace, action: str, skip: Iterable[str] = ()) -> dict[str, Any]:
    names = (python_name(p.name) for p in ACTIONS[action].params if p.name not in skip)
    return {name: getattr(args, name) for name in names}


def _list(client: Client, args: argparse.Namespace) -> int:
    if args.all:
        records = tuple(
            client.iter_resources(
                args.type, state=args.state, keyword=args.keyword, page_size=args.limit or 100
            )
        )
        _emit(
            args,
            {"Records": [r.to_wire() for r in records], "Total": len(records)},
            lambda: _resource_table(records),
        )
        return EXIT_OK
    page = client.query_open_get_resource(**_spec_values(args, "QueryOpenGetResource"))
    footer = f"{len(page.records)} of {page.total} (Offset {page.offset}, Limit {page.limit})"
    _emit(args, page, lambda: f"{_resource_table(page.records)}\n{footer}")
    return EXIT_OK


def _get(client: Client, args: argparse.Namespace) -> int:
    resource = client.get_resource(args.resource_key, args.type)
    _emit(args, resource, lambda: _resource_details(resource))
    return EXIT_OK


def _usable(client: Client, args: argparse.Namespace) -> int:
    query = client.query_usable_resource_v2 if args.v2 else client.query_usable_resource
    resources = query(args.type)
    _emit(args, resources, lambda: _resource_table(resources))
    return EXIT_OK


def _create_tts(client: Client, args: argparse.Namespace) -> int:
    created = client.open_create_tts(**_spec_values(args, "OpenCreateTts"))
    _emit(args, created, lambda: f"created {created.resource_key}  {created.name}")
    return EXIT_OK


def _rename(client: Client, args: argparse.Namespace) -> int:
    renamed = client.open_update_resource(**_spec_values(args, "OpenUpdateResource"))
    _emit(args, renamed, lambda: f"renamed {renamed.resource_key} to {renamed.name}")
    return EXIT_OK


def _delete(client: Client, args: argparse.Namespace) -> int:
    deleted = client.open_delete_resource(**_spec_values(args, "OpenDeleteResource"))
    _emit(args, deleted, lambda: f"deleted {deleted.resource_key}")
    return EXIT_OK


def _fetch(client: Client, args: argparse.Namespace) -> int:
    stored = client.fetch_resource(**_spec_values(args, "FetchResource"))
    # The Name as stored: the Suffix is the audio's format, not part of the name.
    _emit(args, stored, lambda: f"fetched {stored.resource_key}  {stored.name}  ({stored.suffix[1:]})")
    return EXIT_OK


_SYNC_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "list": _list,
    "get": _get,
    "usable": _usable,
    "create-tts": _create_tts,
    "rename": _rename,
    "delete": _delete,
    "fetch": _fetch,
}


# --- upload -----------------------------------------------------------------------------------


def collect_files(paths: Iterable[str]) -> list[Path]:
    """Named files as given; folders contribute their .mp3/.wav files (not recursively), sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {raw}")
    return files


def _error_text(error: BaseException) -> str:
    return str(error) if isinstance(error, VmsError | ClientError) else f"{type(error).__name__}: {error}"


@dataclass
class UploadProgress:
    """Progress on stderr: a redrawn status line on a terminal, one line per file otherwise."""

    stream: IO[str]
    files: int
    total_bytes: int
    sent: dict[str, int] = field(default_factory=dict)
    finished: int = 0

    def __post_init__(self) -> None:
        self.live = self.stream.isatty()

    def _status(self) -> str:
        done = sum(self.sent.values())
        return f"[{self.finished}/{self.files}] {done / 1e6:.1f} of {self.total_bytes / 1e6:.1f} MB"

    def _redraw(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K" + self._status())
            self.stream.flush()

    def callback(self, file_name: str) -> Callable[[int, int], None]:
        def report(sent: int, total: int) -> None:
            self.sent[file_name] = sent
            self._redraw()

        return report

    def line(self, text: str, file_name: str, size: int) -> None:
        self.finished += 1
        self.sent[file_name] = size
        prefix = "\r\x1b[K" if self.live else ""
        self.stream.write(f"{prefix}{text}\n")
        self._redraw()
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


async def _upload_all(args: argparse.Namespace, files: list[Path]) -> list[dict[str, Any]]:
    # The lookup for already-committed files needs the type the commit would default to.
    type_ = args.type if args.type is not None else ACTIONS["CommitResourceUpload"].by_name["Type"].default
    sizes = {f: f.stat().st_size for f in files}
    progress = UploadProgress(sys.stderr, len(files), sum(sizes.values()))
    limit = asyncio.Semaphore(max(1, args.concurrency))

    async def one(client: AsyncClient, path: Path) -> dict[str, Any]:
        async with limit:
            row: dict[str, Any] = {"File": str(path), "FileName": path.name}
            try:
                existing = await _committed(client, type_, path.name)
                if existing is not None:
                    row.update(Status="skipped", ResourceKey=existing.resource_key, Name=existing.name)
                    progress.line(
                        f"skipped  {path.name}: already {existing.resource_key}", path.name, sizes[path]
                    )
                    return row
                stored = await client.upload(path, type_, progress=progress.callback(path.name))
                row.update(Status="uploaded", **stored.to_wire())
                progress.line(f"uploaded {path.name}: {stored.resource_key}", path.name, sizes[path])
            except (VmsError, ClientError, OSError) as error:
                row.update(Status="failed", Error=_error_json(error), NoAnswer=isinstance(error, ClientError))
                progress.line(f"failed   {path.name}: {_error_text(error)}", path.name, sizes[path])
            return row

    try:
        async with AsyncClient(**_client_options(args)) as client:
            return list(await asyncio.gather(*(one(client, f) for f in files)))
    finally:
        progress.close()


async def _committed(client: AsyncClient, type: int, file_name: str) -> Resource | None:
    # The service may keep the name with or without its extension (Suffix holds the extension);
    # searching by the stem finds it either way, and only an exact match counts.
    async for resource in client.iter_resources(type, keyword=Path(file_name).stem or file_name):
        if file_name in (resource.name, resource.name + resource.suffix):
            return resource
    return None


def _error_json(error: BaseException) -> dict[str, Any]:
    if isinstance(error, VmsError):
        return {"Code": error.code, "Message": error.message, "RequestId": error.request_id}
    return {"Code": type(error).__name__, "Message": str(error), "RequestId": ""}


def _upload(args: argparse.Namespace) -> int:
    try:
        files = collect_files(args.paths)
    except FileNotFoundError as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return EXIT_USAGE
    names: dict[str, Path] = {}
    for path in files:
        if path.name in names:
            print(
                f"vmsres: {names[path.name]} and {path} have the same FileName; it must be unique",
                file=sys.stderr,
            )
            return EXIT_USAGE
        names[path.name] = path
    if not files:
        print("vmsres: no .mp3 or .wav files to upload", file=sys.stderr)
        return EXIT_USAGE
    rows = asyncio.run(_upload_all(args, files))
    unanswered = [r.pop("NoAnswer") for r in rows if "NoAnswer" in r]
    counts = {
        status: sum(r["Status"] == status for r in rows) for status in ("uploaded", "skipped", "failed")
    }
    print(", ".join(f"{n} {status}" for status, n in counts.items()), file=sys.stderr)
    table_rows = [
        (r["Status"], r["FileName"], r.get("ResourceKey", ""), r.get("Error", {}).get("Code", ""))
        for r in rows
    ]
    _emit(args, rows, lambda: format_table(table_rows, ("STATUS", "FILE NAME", "RESOURCE KEY", "ERROR")))
    if not unanswered:
        return EXIT_OK
    # When nothing was refused, only unanswered, say so: running again may well succeed.
    return EXIT_NO_ANSWER if all(unanswered) else EXIT_REFUSED


def run_resource_command(args: argparse.Namespace) -> int:
    """Run a parsed ``vmsres res ...`` command; returns the exit status."""
    options = _client_options(args)
    try:
        check_location(options["endpoint"], options["region"])
    except ValueError as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "all", False) and args.offset:
        print("vmsres: --all starts at the first row; leave out --offset", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.subcommand == "upload":
            return _upload(args)
        with Client(**options) as client:
            return _SYNC_COMMANDS[args.subcommand](client, args)
    except VmsError as error:
        print(f"vmsres: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except ClientError as error:
        print(f"vmsres: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_NO_ANSWER

"""Generated parts of docs/: the resource record (vmsres.protocol.records) in api.md and client.md,
parameter tables (vmsres.protocol.spec), the error table (vmsres.protocol.errors), the admin
endpoint table (vmsres.server.admin.operations) and the serve options with their environment
variables (the CLI's parser).

``python -m tools.docgen`` rewrites the marked sections in place; a test fails when they are stale.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from vmsres.protocol.errors import ERRORS
from vmsres.protocol.records import RESOURCE, ResourceState, ResourceType
from vmsres.protocol.spec import ACTION_SPECS, Param, python_name
from vmsres.server.admin.operations import AUDIO_FACTS, OPERATIONS, PREFIX, In
from vmsres.server.admin.operations import Param as AdminParam

_TRANSPORT = {
    "json": "POST, JSON body",
    "query": "POST, query string (empty form body)",
    "query_json": "POST, query string (`{}` JSON body)",
    "get": "GET, query string",
}


def _bounds(param: Param) -> str:
    parts: list[str] = []
    if param.choices is not None:
        parts.append("one of " + ", ".join(map(str, param.choices)))
    if param.minimum is not None:
        parts.append(f">= {param.minimum}")
    if param.maximum is not None:
        parts.append(f"<= {param.maximum}")
    if param.max_length is not None:
        parts.append(f"<= {param.max_length} chars")
    if param.kind == "json_object":
        parts.append("a JSON object")
    return "; ".join(parts) or "-"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def parameter_tables() -> str:
    out: list[str] = []
    for spec in ACTION_SPECS:
        title = spec.name + (" (our extension)" if spec.extension else "")
        out.append(f"### {title}\n")
        out.append(
            f"{spec.doc} Sent by the official Python SDK as {_TRANSPORT[spec.transport]}; "
            f"vmsres accepts {' and '.join(spec.methods)} with parameters anywhere. "
            f"Result: {spec.result.render()}.\n"
        )
        out.append("| Parameter | Type | Required | Default | Bounds | Meaning |")
        out.append("|---|---|---|---|---|---|")
        for p in spec.params:
            required = "yes" if p.required else "no"
            default = "-" if p.default is None or p.required else f"`{p.default!r}`"
            name = f"{p.name} (ext.)" if p.extension else p.name
            missing = f" Absent: {p.missing_error.code}." if p.missing_error else ""
            out.append(
                f"| {name} | {p.kind} | {required} | {default} | {_bounds(p)} | {_cell(p.doc)}{missing} |"
            )
        out.append("")
    return "\n".join(out)


def record_table() -> str:
    rows = ["| Field | Type | Meaning |", "|---|---|---|"]
    for f in RESOURCE.fields:
        meaning = f.doc
        if f.only_for is not None:
            meaning = f"{meaning}; {f.only_for.doc}s only"
        if f.extension:
            meaning = f"our extension: {meaning}"
        rows.append(f"| {f.name} | {f.kind} | {_cell(meaning)} |")
    rows += ["", "| Type | | State | |", "|---|---|---|---|"]
    for type_, state in zip(ResourceType, ResourceState, strict=True):
        rows.append(f"| {int(type_)} | {type_.doc} | {int(state)} | {state.label}: {_cell(state.doc)} |")
    return "\n".join(rows) + "\n"


def client_resource_fields() -> str:
    names = ", ".join(python_name(f.name) for f in RESOURCE.fields)
    return (
        f"`Resource` has `{names}` (the wire's fields in snake case); `created_at` is `create_time` "
        "as an aware `datetime` (China time, as the wire gives it).\n"
    )


def error_table() -> str:
    rows = ["| Code | HTTP status | When | Message |", "|---|---|---|---|"]
    for code, cls in sorted(ERRORS.items(), key=lambda item: (item[1].http_status, item[0])):
        message = cls.default_message or getattr(cls, "template", None) or ""
        rows.append(f"| {code} | {cls.http_status} | {_cell(cls.when)} | {_cell(str(message))} |")
    return "\n".join(rows) + "\n"


def _admin_params(params: tuple[AdminParam, ...], where: In) -> list[str]:
    return [p.name + ("" if p.required else "?") for p in params if p.where is where]


def admin_endpoints() -> str:
    rows = [
        "| Method and path | Role | Query | Body | Answers | CLI | What |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in OPERATIONS:
        query = ", ".join(f"`{name}`" for name in _admin_params(op.params, In.QUERY)) or "-"
        fields = _admin_params(op.params, In.BODY)
        if op.body == "raw":
            body = "JSON (see below)"
        elif fields:
            body = "`{" + ", ".join(f'"{name}"' for name in fields) + "}`"
            body += " (fields left out stay)" if op.body == "partial" else ""
        else:
            body = "-"
        statuses = [op.status, *op.statuses, *([422] if op.params else [])]
        cli = "-"
        if op.cli is not None:
            cli = f"`vmsres {op.cli.command}" + (f" {op.cli.subcommand}`" if op.cli.subcommand else "`")
        what = op.summary + (f". {op.description}" if op.description else "")
        rows.append(
            f"| `{op.method} {PREFIX}{op.path}` | {op.role} | {query} | {_cell(body)} | "
            f"{', '.join(map(str, sorted(set(statuses))))} | {cli} | {_cell(what)} |"
        )
    return "\n".join(rows) + "\n"


def serve_options() -> str:
    from vmsres.cli import build_parser
    from vmsres.cli.arguments import ENV_PREFIX, env_name

    # Defaults as shipped, not as this shell's environment would set them.
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX) or k == "AWS_ENDPOINT_URL"}
    for name in saved:
        del os.environ[name]
    try:
        parser = build_parser()
    finally:
        os.environ.update(saved)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    rows = ["| Option | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for action in commands.choices["serve"]._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        env = env_name(action)
        meaning = (action.help or "").replace(f"[env {env}]", "").strip() % vars(action)
        default = "" if action.default in (None, []) else f"`{action.default}`"
        rows.append(f"| `{action.option_strings[-1]}` | `{env}` | {default} | {_cell(meaning)} |")
    return "\n".join(rows) + "\n"


def audio_facts() -> str:
    rows = ["| Field | Type | Meaning |", "|---|---|---|"]
    for f in AUDIO_FACTS.fields:
        rows.append(f"| {f.name} | {f.kind} | {_cell(f.doc)} |")
    return "\n".join(rows) + "\n"


SECTIONS: dict[str, dict[str, Callable[[], str]]] = {
    "docs/api.md": {"record": record_table, "parameters": parameter_tables},
    "docs/errors.md": {"errors": error_table},
    "docs/client.md": {"resource-fields": client_resource_fields},
    "docs/admin.md": {"admin-endpoints": admin_endpoints, "audio-facts": audio_facts},
    "docs/operations.md": {"serve-options": serve_options},
}


def render(text: str, sections: dict[str, Callable[[], str]]) -> str:
    for name, build in sections.items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)", re.DOTALL
        )
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"missing generated section {name}")
        text = text[: match.end(1)] + build() + text[match.start(2) :]
    return text


def main(root: str = ".") -> int:
    for relative, sections in SECTIONS.items():
        path = Path(root) / relative
        path.write_text(render(path.read_text(), sections))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

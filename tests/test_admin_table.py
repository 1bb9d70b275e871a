"""The admin operation table (server/admin/operations.py) agrees with what it drives."""

from __future__ import annotations

import inspect

import pytest

from vmsres.cli import build_parser
from vmsres.cli.store import SHOW
from vmsres.server.admin.app import router
from vmsres.server.admin.operations import BY_NAME, OPERATIONS, PREFIX, AdminOperation, In, call_keywords
from vmsres.server.service.admin import AdminOps


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
def test_each_operation_calls_its_admin_ops_method_with_keywords_it_takes(operation: AdminOperation) -> None:
    method = getattr(AdminOps, operation.call)
    given = {p.keyword: None for p in operation.params}
    if operation.body_arg is not None:
        given[operation.body_arg] = None
    inspect.signature(method).bind(None, **call_keywords(operation, given))
    for param in operation.params_in(In.PATH):
        assert "{" + param.name + "}" in operation.path


def test_every_operation_is_a_route_and_nothing_else_is() -> None:
    routes = {(method, route.path) for route in router.routes for method in route.methods}  # type: ignore[attr-defined]
    assert routes == {(o.method, PREFIX + o.path) for o in OPERATIONS}


def test_every_cli_command_runs_an_operation_of_the_table() -> None:
    parser = build_parser()
    for operation in OPERATIONS:
        if operation.cli is None:
            continue
        argv = [operation.cli.command]
        if operation.cli.subcommand is not None:
            argv.append(operation.cli.subcommand)
        for param in operation.params:
            if param.cli is None:
                continue
            if param.cli.switch:
                argv.append(str(param.cli.flag))
                continue
            value = "1" if param.cli.choices is None else str(param.cli.choices[0])
            argv += [param.cli.flag, value] if param.cli.flag else [value]
        assert parser.parse_args(argv).operation == operation.name
    assert set(BY_NAME) == {o.name for o in OPERATIONS}


def test_every_cli_command_says_what_it_prints() -> None:
    assert set(SHOW) == {o.name for o in OPERATIONS if o.cli is not None}

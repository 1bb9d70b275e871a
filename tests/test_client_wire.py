"""What the client puts on the wire, and its local checks agree with the server.

The typed operations need no guard here: tools/clientgen.py generates them from
vmsres.protocol.spec, and tests/test_docs.py fails when the generated files are stale.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers import RunningServer
from vmsres.client import NO_RETRY, Client
from vmsres.client import operations as ops
from vmsres.client.models import python_name, wire_name
from vmsres.client.wire import prepare_call
from vmsres.protocol.errors import VmsError
from vmsres.protocol.spec import ACTION_SPECS


def test_names_round_trip() -> None:
    for spec in ACTION_SPECS:
        for param in spec.params:
            assert wire_name(python_name(param.name)) == param.name


def test_operations_map_every_argument_to_its_wire_name() -> None:
    op = ops.open_create_tts("n", "c", tts_option={"Speed": 1}, remark="r", type=1)
    assert dict(op.params) == {
        "Name": "n",
        "TtsTemplateContent": "c",
        "TtsOption": {"Speed": 1},
        "Remark": "r",
        "Type": 1,
        "ClientToken": None,
        "DryRun": None,
    }


def test_transport_places_parameters() -> None:
    json_call = prepare_call("QueryOpenGetResource", {"Type": "1", "Limit": 5})
    assert json_call.body == b'{"Type": 1, "Limit": 5}'
    assert json_call.query == (("Action", "QueryOpenGetResource"), ("Version", "2022-01-01"))
    query_call = prepare_call("OpenUpdateResource", {"ResourceKey": "k", "Name": "a b"})
    assert query_call.body == b""
    assert query_call.content_type == "application/x-www-form-urlencoded"
    assert query_call.query[2:] == (("ResourceKey", "k"), ("Name", "a b"))
    delete_call = prepare_call("OpenDeleteResource", {"ResourceKey": "k"})
    assert (delete_call.body, delete_call.content_type) == (b"{}", "application/json")
    get_call = prepare_call("QueryUsableResourceV2", {"Type": 0})
    assert (get_call.method, get_call.body) == ("GET", b"")
    tts = prepare_call("OpenCreateTts", {"Name": "n", "TtsTemplateContent": "c", "TtsOption": {"A": 1}})
    assert tts.body == b'{"Name": "n", "TtsTemplateContent": "c", "TtsOption": "{\\"A\\":1}"}'


def test_unknown_parameters_and_actions_are_refused_locally() -> None:
    with pytest.raises(TypeError, match="Limt"):
        prepare_call("QueryOpenGetResource", {"Type": 0, "Limt": 5})
    with pytest.raises(ValueError, match="NoSuchAction"):
        prepare_call("NoSuchAction", {})
    unchecked = prepare_call("NoSuchAction", {"Extra": 1}, validate=False)
    assert (unchecked.body, unchecked.mutating) == (b'{"Extra": 1}', True)


# Bad input, as the same call through the typed method: local validation and the server must
# answer with the same error class.
BAD_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("QueryOpenGetResource", {}),
    ("QueryOpenGetResource", {"Type": 7}),
    ("QueryOpenGetResource", {"Type": 0, "Limit": 0}),
    ("QueryOpenGetResource", {"Type": 0, "Limit": 101}),
    ("QueryOpenGetResource", {"Type": 0, "Offset": -1}),
    ("QueryOpenGetResource", {"Type": 0, "State": "x"}),
    ("QueryUsableResource", {"Type": 9}),
    ("QueryUsableResourceV2", {}),
    ("OpenCreateTts", {"TtsTemplateContent": "c"}),
    ("OpenCreateTts", {"Name": "  ", "TtsTemplateContent": "c"}),
    ("OpenCreateTts", {"Name": "n"}),
    ("OpenCreateTts", {"Name": "n", "TtsTemplateContent": "c", "TtsOption": "[1]"}),
    ("OpenCreateTts", {"Name": "n" * 129, "TtsTemplateContent": "c"}),
    ("OpenCreateTts", {"Name": "n", "TtsTemplateContent": "c", "Type": 0}),
    ("OpenUpdateResource", {"Name": "n"}),
    ("OpenUpdateResource", {"ResourceKey": "k", "Name": ""}),
    ("OpenDeleteResource", {"ResourceKey": ""}),
]


@pytest.mark.parametrize(("action", "params"), BAD_CALLS, ids=[f"{a}-{p}" for a, p in BAD_CALLS])
def test_local_validation_agrees_with_the_server(
    server: RunningServer, action: str, params: dict[str, Any]
) -> None:
    with pytest.raises(VmsError) as local:
        prepare_call(action, params)
    with (
        Client(
            server.access_key, server.secret_key, endpoint=server.url, validate=False, retry=NO_RETRY
        ) as client,
        pytest.raises(VmsError) as remote,
    ):
        client.call(action, **params)
    assert type(local.value) is type(remote.value)
    assert local.value.message == remote.value.message
    assert remote.value.request_id and not local.value.request_id

"""Property-based fuzzing of what the wire turns into parameters: a value or a VmsError, nothing else."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmsres.protocol.errors import InternalError, ServerError, ServiceUnavailable, VmsError
from vmsres.protocol.signing import parse_query
from vmsres.protocol.spec import ACTIONS
from vmsres.server.wire.app import body_parameters, first_of_repeated

PARAM_NAMES = sorted({p.name for spec in ACTIONS.values() for p in spec.params})
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    # Unbounded: the wire may carry integers no 64-bit type holds.
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["0", "1", "-1", " 2 ", "", "  ", "\x00", "１", "²", "{}", '{"a": 1}', "[]"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
keys = st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=12))


def _parse(action: str, body: bytes, content_type: str, query: str = "") -> None:
    spec = ACTIONS[action]
    try:
        raw: dict[str, Any] = dict(first_of_repeated(parse_query(query)))
        raw.update(body_parameters(body, content_type))
        parsed = spec.parse(raw)
    except VmsError as exc:
        # Bad input is the client's fault; a server-side error class here would hide a parser bug.
        assert not isinstance(exc, (InternalError, ServerError, ServiceUnavailable)), repr(exc)
        return
    assert set(parsed) == {p.name for p in spec.params}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    action=st.sampled_from(sorted(ACTIONS)),
    params=st.dictionaries(keys, json_values, max_size=6),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_any_json_object_parses_or_raises_a_vms_error(
    action: str, params: dict[str, Any], content_type: str
) -> None:
    _parse(action, json.dumps(params).encode(), content_type)


@settings(max_examples=400, deadline=None)
@given(
    action=st.sampled_from(sorted(ACTIONS)),
    body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
    content_type=st.sampled_from(CONTENT_TYPES),
    query=st.one_of(
        st.text(max_size=60),
        st.dictionaries(keys, st.text(max_size=10), max_size=4).map(
            lambda d: "&".join(f"{k}={v}" for k, v in d.items())
        ),
    ),
)
def test_any_bytes_parse_or_raise_a_vms_error(
    action: str, body: bytes, content_type: str, query: str
) -> None:
    _parse(action, body, content_type, query)


@settings(max_examples=200, deadline=None)
@given(
    action=st.sampled_from(sorted(ACTIONS)),
    form=st.lists(st.tuples(keys, st.binary(max_size=12)), max_size=5),
)
def test_any_form_body_parses_or_raises_a_vms_error(action: str, form: list[tuple[str, bytes]]) -> None:
    from urllib.parse import quote_from_bytes

    body = "&".join(f"{quote_from_bytes(k.encode())}={quote_from_bytes(v)}" for k, v in form).encode()
    _parse(action, body, "application/x-www-form-urlencoded")

"""Both official SDKs, unchanged, against a real vmsres server on loopback."""

from __future__ import annotations

import ast
import uuid
from typing import Any

import pytest

from tests.conftest import generated_vms_api, official_vms_service
from tests.servers import RunningServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_of(exc: BaseException) -> dict[str, Any]:
    """The official SDK raises Exception(str(bytes body)) for JSON-body actions."""
    text = str(exc)
    body = ast.literal_eval(text) if text.startswith("b'") else text
    import json

    return dict(json.loads(body)["ResponseMetadata"]["Error"])


def create_tts(vms: Any, name: str, content: str = "您好 #name#，您的快递已到") -> str:
    result = vms.create_tts(
        {
            "Name": name,
            "TtsTemplateContent": content,
            "TtsOption": '{"VoiceType":"BV001","Speed":1}',
            "Remark": "r",
        }
    )
    assert result["ResponseMetadata"]["Action"] == "OpenCreateTts"
    assert result["Result"]["Name"] == name
    key = result["Result"]["ResourceKey"]
    assert len(key) == 32 and all(c in "0123456789abcdef" for c in key)
    return str(key)


def test_volcengine_sdk_every_action(vms: Any) -> None:
    name = unique("通知模板")
    key = create_tts(vms, name)

    page = vms.query_open_get_resource({"Type": 1, "Keyword": key, "Limit": 10, "Offset": 0})
    meta = page["ResponseMetadata"]
    assert meta["Service"] == "vms" and meta["Version"] == "2022-01-01" and len(meta["RequestId"]) == 32
    assert page["Result"]["Total"] == 1 and page["Result"]["Limit"] == 10 and page["Result"]["Offset"] == 0
    record = page["Result"]["Records"][0]
    assert record["ResourceKey"] == key and record["Name"] == name and record["Type"] == 1
    assert record["State"] == 1 and record["Suffix"] == "" and record["Remark"] == "r"
    assert record["TtsOptions"] == '{"VoiceType":"BV001","Speed":1}'
    assert record["TtsTemplateContent"] == "您好 #name#，您的快递已到"
    assert len(record["CreateTime"]) == 19

    usable = vms.query_usable_resource({"Type": 1})
    assert key in [r["ResourceKey"] for r in usable["Result"]]

    renamed = vms.open_update_resource({"ResourceKey": key, "Name": "new name 中.mp3"})
    assert renamed["Result"] == {"ResourceKey": key, "Name": "new name 中.mp3"}
    page = vms.query_open_get_resource({"Type": 1, "Keyword": key})
    assert page["Result"]["Records"][0]["Name"] == "new name 中.mp3"

    deleted = vms.delete_resource({"ResourceKey": key})
    assert deleted["Result"] == {"ResourceKey": key}
    assert vms.query_open_get_resource({"Type": 1, "Keyword": key})["Result"]["Total"] == 0


def test_generated_sdk_every_action(server: RunningServer) -> None:
    from volcenginesdkvms.models import (
        OpenCreateTtsRequest,
        OpenDeleteResourceRequest,
        OpenUpdateResourceRequest,
        QueryOpenGetResourceRequest,
        QueryUsableResourceV2Request,
    )

    api = generated_vms_api(server)
    name = unique("generated")
    created = api.open_create_tts(
        OpenCreateTtsRequest(name=name, tts_template_content="code #code#", remark="")
    )
    key = created.resource_key
    assert created.name == name

    page = api.query_open_get_resource(QueryOpenGetResourceRequest(type=1, keyword=name, limit=5, offset=0))
    assert page.total == 1 and page.limit == 5 and page.offset == 0
    assert page.records[0].resource_key == key and page.records[0].state == 1

    usable = api.query_usable_resource_v2(QueryUsableResourceV2Request(type=1))
    assert key in [r.resource_key for r in usable.records]

    renamed = api.open_update_resource(OpenUpdateResourceRequest(resource_key=key, name=name + "-2"))
    assert renamed.name == name + "-2"
    assert api.open_delete_resource(OpenDeleteResourceRequest(resource_key=key)).resource_key == key


def test_generated_sdk_error_raises_with_code(server: RunningServer) -> None:
    from volcenginesdkcore.rest import ApiException
    from volcenginesdkvms.models import OpenDeleteResourceRequest

    api = generated_vms_api(server)
    with pytest.raises(ApiException) as info:
        api.open_delete_resource(OpenDeleteResourceRequest(resource_key=uuid.uuid4().hex))
    assert info.value.status == 404
    assert "RESOURCE_KEY_IS_NOT_EXIST" in str(info.value.body)


def test_paging_never_repeats_or_skips(vms: Any) -> None:
    tag = unique("paging")
    keys = {create_tts(vms, f"{tag}-{i}") for i in range(7)}
    seen: list[str] = []
    for offset in range(0, 9, 3):
        page = vms.query_open_get_resource({"Type": 1, "Keyword": tag, "Limit": 3, "Offset": offset})[
            "Result"
        ]
        assert page["Total"] == 7
        seen += [r["ResourceKey"] for r in page["Records"]]
    assert len(seen) == 7 and set(seen) == keys
    # Newest first: the last created comes first.
    first = vms.query_open_get_resource({"Type": 1, "Keyword": tag, "Limit": 1})["Result"]["Records"][0]
    assert first["Name"] == f"{tag}-6"


def test_offset_as_string_and_state_filter(vms: Any) -> None:
    tag = unique("offset")
    create_tts(vms, tag)
    page = vms.query_open_get_resource({"Type": 1, "Keyword": tag, "Offset": "0", "Limit": "10", "State": 1})
    assert page["Result"]["Total"] == 1 and page["Result"]["Offset"] == 0
    assert vms.query_open_get_resource({"Type": 1, "Keyword": tag, "State": 0})["Result"]["Total"] == 0


def test_chinese_keyword_is_a_substring_match(vms: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    key = create_tts(vms, f"{tag}快递到达通知")
    create_tts(vms, f"{tag}生日祝福")
    page = vms.query_open_get_resource({"Type": 1, "Keyword": f"{tag}快递"})["Result"]
    assert [r["ResourceKey"] for r in page["Records"]] == [key]
    page = vms.query_open_get_resource({"Type": 1, "Keyword": "到达通"})["Result"]
    assert key in [r["ResourceKey"] for r in page["Records"]]


def test_keyword_is_case_insensitive_and_literal(vms: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    key = create_tts(vms, f"Promo_{tag}_50%")
    create_tts(vms, f"PromoX{tag}X50X")
    hits = vms.query_open_get_resource({"Type": 1, "Keyword": f"promo_{tag.upper()}_50%"})["Result"][
        "Records"
    ]
    assert [r["ResourceKey"] for r in hits] == [key]


@pytest.mark.parametrize(
    ("body", "code", "parameter"),
    [
        ({"Limit": 10}, "MissingParameter", "Type"),
        ({"Type": 0, "Limit": 0}, "InvalidParameter", "Limit"),
        ({"Type": 0, "Limit": 101}, "InvalidParameter", "Limit"),
        ({"Type": 3}, "InvalidParameter", "Type"),
        ({"Type": 0, "Offset": -1}, "InvalidParameter", "Offset"),
        ({"Type": 0, "State": 5}, "InvalidParameter", "State"),
        ({"Type": "zero"}, "InvalidParameter", "Type"),
    ],
)
def test_query_parameter_errors(vms: Any, body: dict[str, Any], code: str, parameter: str) -> None:
    with pytest.raises(Exception) as info:
        vms.query_open_get_resource(body)
    error = error_of(info.value)
    assert error["Code"] == code and parameter in error["Message"]


def test_wrong_secret_unknown_key_and_disabled_key(server: RunningServer) -> None:
    bad_secret = official_vms_service(server, sk="wrong-secret")
    with pytest.raises(Exception) as info:
        bad_secret.query_open_get_resource({"Type": 0})
    assert error_of(info.value)["Code"] == "SignatureNotMatch"

    unknown = official_vms_service(server, ak="AKLTnobody", sk="x")
    with pytest.raises(Exception) as info:
        unknown.query_open_get_resource({"Type": 0})
    assert error_of(info.value)["Code"] == "InvalidAccessKeyId"

    created = server.cli("keys", "create", "--account", "default", "--json")
    import json

    key = json.loads(created.stdout)
    disabled = official_vms_service(server, ak=key["AccessKey"], sk=key["SecretKey"])
    assert disabled.query_open_get_resource({"Type": 0})["Result"]["Limit"] == 10
    server.cli("keys", "disable", key["AccessKey"])
    with pytest.raises(Exception) as info:
        official_vms_service(server, ak=key["AccessKey"], sk=key["SecretKey"]).query_open_get_resource(
            {"Type": 0}
        )
    assert error_of(info.value)["Code"] == "InvalidAccessKeyId"


def test_foreign_resource_key_behaves_like_a_missing_one(server: RunningServer) -> None:
    import json

    server.cli("accounts", "create", "tenant-b")
    other = json.loads(server.cli("keys", "create", "--account", "tenant-b", "--json").stdout)
    mine = official_vms_service(server)
    key = create_tts(mine, unique("mine"))
    missing = uuid.uuid4().hex

    theirs = official_vms_service(server, ak=other["AccessKey"], sk=other["SecretKey"])
    for resource_key in (key, missing):
        assert theirs.query_open_get_resource({"Type": 1, "Keyword": resource_key})["Result"]["Total"] == 0
        # Query-style actions: the SDK hands back the parsed error body.
        renamed = theirs.open_update_resource({"ResourceKey": resource_key, "Name": "stolen"})
        assert renamed["ResponseMetadata"]["Error"]["Code"] == "RESOURCE_KEY_IS_NOT_EXIST"
        with pytest.raises(Exception) as info:
            theirs.delete_resource({"ResourceKey": resource_key})
        assert error_of(info.value)["Code"] == "RESOURCE_KEY_IS_NOT_EXIST"
    assert key not in [r["ResourceKey"] for r in theirs.query_usable_resource({"Type": 1})["Result"]]

    mine = official_vms_service(server)
    record = mine.query_open_get_resource({"Type": 1, "Keyword": key})["Result"]["Records"][0]
    assert record["Name"].startswith("mine-")


def test_rename_errors(vms: Any) -> None:
    key = create_tts(vms, unique("rename"))
    assert vms.open_update_resource({"ResourceKey": key, "Name": "  "})["ResponseMetadata"]["Error"][
        "Code"
    ] == ("RESOURCE_NAME_IS_NONE")
    assert (
        vms.open_update_resource({"Name": "x"})["ResponseMetadata"]["Error"]["Code"] == "RESOURCE_KEY_IS_NONE"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"TtsTemplateContent": "hi"}, "RESOURCE_NAME_IS_NONE"),
        ({"Name": "n"}, "MissingParameter"),
        ({"Name": "n", "TtsTemplateContent": "   "}, "MissingParameter"),
        ({"Name": "n", "TtsTemplateContent": "hi ${name}"}, "InvalidParameter"),
        ({"Name": "n", "TtsTemplateContent": "hi #na me#"}, "InvalidParameter"),
        ({"Name": "n", "TtsTemplateContent": "hi #name"}, "InvalidParameter"),
        ({"Name": "n", "TtsTemplateContent": "x" * 1001}, "InvalidParameter"),
        ({"Name": "n", "TtsTemplateContent": "hi", "TtsOption": "[1]"}, "InvalidParameter"),
        ({"Name": "n", "TtsTemplateContent": "hi", "TtsOption": "{bad"}, "InvalidParameter"),
        ({"Name": "n", "TtsTemplateContent": "hi", "Type": 0}, "InvalidParameter"),
    ],
)
def test_create_tts_errors(vms: Any, body: dict[str, Any], code: str) -> None:
    with pytest.raises(Exception) as info:
        vms.create_tts(body)
    assert error_of(info.value)["Code"] == code


def test_tts_option_snake_case_is_stored_verbatim(vms: Any) -> None:
    option = '{"voice_type": "BV002", "speed": 1.2, "loop": 2}'
    result = vms.create_tts({"Name": unique("snake"), "TtsTemplateContent": "hello", "TtsOption": option})
    key = result["Result"]["ResourceKey"]
    record = vms.query_open_get_resource({"Type": 1, "Keyword": key})["Result"]["Records"][0]
    assert record["TtsOptions"] == option

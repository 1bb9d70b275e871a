"""The review rules as functions: what the audio ingestion and TTS creation call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmsres.protocol.records import ResourceState
from vmsres.server.service.review import (
    ReviewRules,
    decide_audio,
    decide_tts,
    load_rules_file,
)

RULES = ReviewRules(min_audio_seconds=1, max_audio_seconds=60, banned_words=("违禁",), max_tts_chars=20)


@pytest.mark.parametrize(
    ("policy", "duration", "silent", "state", "rule"),
    [
        ("auto", 10, False, ResourceState.APPROVED, "auto:audio-valid"),
        ("auto", 0.5, False, ResourceState.REJECTED, "auto:audio-duration"),
        ("auto", 61, False, ResourceState.REJECTED, "auto:audio-duration"),
        ("auto", 10, True, ResourceState.REJECTED, "auto:audio-silence"),
        ("auto-then-manual", 10, False, ResourceState.REVIEWING, None),
        ("auto-then-manual", 61, False, ResourceState.REJECTED, "auto:audio-duration"),
        ("auto-then-manual", 10, True, ResourceState.REJECTED, "auto:audio-silence"),
        ("manual", 61, True, ResourceState.REVIEWING, None),
    ],
)
def test_decide_audio(policy: str, duration: float, silent: bool, state: int, rule: str | None) -> None:
    decision = decide_audio(policy, RULES, duration, silent)  # type: ignore[arg-type]
    assert decision.state == state and decision.reviewed_by == rule
    assert (decision.reason is not None) == (state == ResourceState.REJECTED)


def test_duration_bounds_are_inclusive_and_reasons_say_which() -> None:
    assert decide_audio("auto", RULES, 1, False).state == ResourceState.APPROVED
    assert decide_audio("auto", RULES, 60, False).state == ResourceState.APPROVED
    assert "shorter than 1 seconds" in (decide_audio("auto", RULES, 0.99, False).reason or "")
    assert "longer than 60 seconds" in (decide_audio("auto", RULES, 60.01, False).reason or "")


def test_silence_may_be_allowed() -> None:
    assert decide_audio("auto", ReviewRules(reject_silent=False), 3, True).state == ResourceState.APPROVED


def test_tts_rules_banned_words_length_and_names() -> None:
    rules = ReviewRules(
        banned_words=("Casino",), max_tts_chars=10, name_pattern=r"[a-z-]+", banned_name_words=("test",)
    )
    assert decide_tts("auto", rules, "ok-name", "hi #n#").state == ResourceState.APPROVED
    banned = decide_tts("auto", rules, "ok-name", "win at CASINO")
    assert banned.state == ResourceState.REJECTED and banned.reviewed_by == "auto:tts-length"
    banned = decide_tts("auto", rules, "ok-name", "casino!")
    assert banned.reviewed_by == "auto:tts-banned-word" and "Casino" in (banned.reason or "")
    assert decide_tts("auto", rules, "Bad Name", "hi").reviewed_by == "auto:name-pattern"
    assert decide_tts("auto", rules, "my-test", "hi").reviewed_by == "auto:name-banned-word"
    assert decide_tts("manual", rules, "Bad Name", "casino").state == ResourceState.REVIEWING


def test_rules_file_json_and_toml_with_word_file(tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("# comment\n违禁\n\nspam\n", encoding="utf-8")
    (tmp_path / "rules.json").write_text(
        json.dumps({"max_audio_seconds": 30, "banned_words_file": "words.txt", "banned_words": ["x"]})
    )
    rules = load_rules_file(tmp_path / "rules.json")
    assert rules.banned_words == ("x", "违禁", "spam") and rules.max_audio_seconds == 30
    (tmp_path / "rules.toml").write_text('name_pattern = "[a-z]+"\nmin_audio_seconds = 2\n')
    rules = load_rules_file(tmp_path / "rules.toml")
    assert rules.name_pattern == "[a-z]+" and rules.min_audio_seconds == 2
    (tmp_path / "bad.json").write_text(json.dumps({"max_seconds": 3}))
    with pytest.raises(ValueError, match="unknown review rule"):
        load_rules_file(tmp_path / "bad.json")


def test_audio_decision_uses_the_accounts_policy_and_the_servers_rules(tmp_path: Path) -> None:
    import asyncio

    from vmsres.server.service.accounts import Principal
    from vmsres.server.service.services import open_services
    from vmsres.server.settings import Settings

    services = open_services(Settings(data_dir=str(tmp_path), review_rules=RULES.to_dict()))
    try:
        strict = Principal(1, "a", "AK", "auto-then-manual")
        assert services.resources.audio_decision(strict, "ok", 10, False).state == ResourceState.REVIEWING
        assert services.resources.audio_decision(strict, "ok", 10, True).reviewed_by == "auto:audio-silence"
        default = Principal(1, "a", "AK", None)
        assert services.resources.audio_decision(default, "ok", 10, False).state == ResourceState.APPROVED
    finally:
        asyncio.run(services.close())


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"max_silence_share": "0.5"}, "max_silence_share must be a number"),
        ({"max_silence_share": True}, "max_silence_share must be a number"),
        ({"max_silence_share": -0.1}, "max_silence_share is a fraction between 0 and 1"),
        ({"max_silence_share": 1.5}, "max_silence_share is a fraction between 0 and 1"),
        ({"min_loudness_lufs": "quiet"}, "min_loudness_lufs must be a number"),
        ({"max_peak_dbfs": 1}, "max_peak_dbfs is a level at or below 0"),
        ({"max_audio_seconds": "60"}, "max_audio_seconds must be a number"),
        (
            {"min_loudness_lufs": -20, "max_loudness_lufs": -30},
            "min_loudness_lufs is above max_loudness_lufs",
        ),
    ],
)
def test_a_rules_file_with_bad_level_values_is_refused_at_load(
    tmp_path: Path, rules: dict[str, object], message: str
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    with pytest.raises(ValueError, match=message):
        load_rules_file(path)


def test_a_toml_rules_file_with_nan_or_infinite_levels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    for line in ("min_loudness_lufs = nan", "max_peak_dbfs = -inf", "max_silence_share = nan"):
        path.write_text(line + "\n")
        with pytest.raises(ValueError, match="must be a finite number"):
            load_rules_file(path)

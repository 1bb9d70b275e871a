"""Review policy and rules: which State a new resource starts in, and who or what decided it.

``auto``: the rules decide at once (approve, or reject with the rule's reason).
``manual``: every resource waits at State 0 for an operator.
``auto-then-manual``: the rules reject what is clearly bad; everything else waits for an operator.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmsres.protocol.records import ResourceState
from vmsres.server.settings import REVIEW_POLICIES, ReviewPolicy


@dataclass(frozen=True, slots=True)
class Decision:
    state: int
    reviewed_by: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class MeasuredLevels:
    """What the audio layer measured of a recording; None where it could not (no ffmpeg)."""

    peak_dbfs: float | None = None
    loudness_lufs: float | None = None
    silence_share: float | None = None


# The rules that hold a number (checked for being one when the rules are made).
_NUMERIC_RULES = (
    "min_audio_seconds",
    "max_audio_seconds",
    "max_tts_chars",
    "max_silence_share",
    "min_loudness_lufs",
    "max_loudness_lufs",
    "max_peak_dbfs",
)


@dataclass(frozen=True)
class ReviewRules:
    """What the automatic checks refuse. Every bound is optional; the defaults refuse nothing
    but silence, which no caller can want played."""

    min_audio_seconds: float | None = None
    max_audio_seconds: float | None = None
    reject_silent: bool = True
    banned_words: tuple[str, ...] = ()
    max_tts_chars: int | None = None
    name_pattern: str | None = None
    banned_name_words: tuple[str, ...] = ()
    # Level bounds (docs/audio.md): a bound on a level that was not measured is not checked.
    max_silence_share: float | None = None
    min_loudness_lufs: float | None = None
    max_loudness_lufs: float | None = None
    max_peak_dbfs: float | None = None
    _name_regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name_pattern is not None:
            object.__setattr__(self, "_name_regex", re.compile(self.name_pattern))
        for bound in _NUMERIC_RULES:
            value = getattr(self, bound)
            # A rules file is read as JSON or TOML: a quoted number or true would otherwise fail
            # at the first commit (TypeError) and NaN would silently never refuse anything.
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"{bound} must be a number, not {value!r}")
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{bound} must be a finite number, not {value!r}")
        for bound in ("min_audio_seconds", "max_audio_seconds", "max_tts_chars"):
            value = getattr(self, bound)
            if value is not None and value < 0:
                raise ValueError(f"{bound} may not be negative")
        if self.max_silence_share is not None and not 0 <= self.max_silence_share <= 1:
            raise ValueError("max_silence_share is a fraction between 0 and 1")
        for bound in ("min_loudness_lufs", "max_loudness_lufs", "max_peak_dbfs"):
            value = getattr(self, bound)
            if value is not None and value > 0:
                raise ValueError(f"{bound} is a level at or below 0 (full scale)")
        low, high = self.min_loudness_lufs, self.max_loudness_lufs
        if low is not None and high is not None and low > high:
            raise ValueError("min_loudness_lufs is above max_loudness_lufs")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_name_regex", None)
        data["banned_words"] = list(self.banned_words)
        data["banned_name_words"] = list(self.banned_name_words)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Path | None = None) -> ReviewRules:
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        extra = set(data) - known - {"banned_words_file", "banned_name_words_file"}
        if extra:
            raise ValueError(f"unknown review rule(s): {', '.join(sorted(extra))}")
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for key in ("banned_words", "banned_name_words"):
            words = list(values.get(key, ()))
            path = data.get(f"{key}_file")
            if path:
                full = Path(path) if base_dir is None else base_dir / path
                words.extend(load_word_list(full))
            values[key] = tuple(w for w in words if w)
        return cls(**values)


def load_word_list(path: Path) -> list[str]:
    """One word or phrase a line; blank lines and lines starting with # are ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def load_rules_file(path: Path) -> ReviewRules:
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the rules file must hold an object")
    return ReviewRules.from_dict(data, path.parent)


def _first_banned(text: str, words: tuple[str, ...]) -> str | None:
    folded = text.casefold()
    for word in words:
        if word.casefold() in folded:
            return word
    return None


def check_name(rules: ReviewRules, name: str) -> Violation | None:
    if rules._name_regex is not None and not rules._name_regex.fullmatch(name):
        return Violation("name-pattern", f"the name does not match the pattern {rules.name_pattern}")
    word = _first_banned(name, rules.banned_name_words)
    if word is not None:
        return Violation("name-banned-word", f"the name contains the banned word {word!r}")
    return None


def check_tts(rules: ReviewRules, name: str, content: str) -> Violation | None:
    """Variables are validated before this (a malformed template is an InvalidParameter)."""
    if rules.max_tts_chars is not None and len(content) > rules.max_tts_chars:
        return Violation("tts-length", f"the template is longer than {rules.max_tts_chars} characters")
    word = _first_banned(content, rules.banned_words)
    if word is not None:
        return Violation("tts-banned-word", f"the template contains the banned word {word!r}")
    return check_name(rules, name)


def check_audio(
    rules: ReviewRules, duration_seconds: float, silent: bool, levels: MeasuredLevels | None = None
) -> Violation | None:
    if silent and rules.reject_silent:
        return Violation("audio-silence", "the audio is silent or nearly silent")
    if rules.min_audio_seconds is not None and duration_seconds < rules.min_audio_seconds:
        return Violation("audio-duration", f"the audio is shorter than {rules.min_audio_seconds:g} seconds")
    if rules.max_audio_seconds is not None and duration_seconds > rules.max_audio_seconds:
        return Violation("audio-duration", f"the audio is longer than {rules.max_audio_seconds:g} seconds")
    return None if levels is None else check_levels(rules, levels)


def check_levels(rules: ReviewRules, levels: MeasuredLevels) -> Violation | None:
    """The level bounds; one on a level that was not measured (None) is not checked."""
    share = levels.silence_share
    if rules.max_silence_share is not None and share is not None and share > rules.max_silence_share:
        return Violation(
            "audio-silence-share",
            f"{share:.0%} of the audio is silence; at most {rules.max_silence_share:.0%} may be",
        )
    loudness = levels.loudness_lufs
    if rules.min_loudness_lufs is not None and loudness is not None and loudness < rules.min_loudness_lufs:
        return Violation(
            "audio-loudness",
            f"the audio is too quiet: {loudness:.1f} LUFS, below the minimum {rules.min_loudness_lufs:g} LUFS",
        )
    if rules.max_loudness_lufs is not None and loudness is not None and loudness > rules.max_loudness_lufs:
        return Violation(
            "audio-loudness",
            f"the audio is too loud: {loudness:.1f} LUFS, above the maximum {rules.max_loudness_lufs:g} LUFS",
        )
    peak = levels.peak_dbfs
    if rules.max_peak_dbfs is not None and peak is not None and peak > rules.max_peak_dbfs:
        return Violation(
            "audio-peak",
            f"the audio peaks at {peak:.1f} dBFS, above the maximum {rules.max_peak_dbfs:g} dBFS",
        )
    return None


def decide(policy: ReviewPolicy, violation: Violation | None, passed_rule: str) -> Decision:
    """``passed_rule`` names the checks a resource passed, for the record of who approved it."""
    if violation is not None and policy != "manual":
        return Decision(ResourceState.REJECTED, f"auto:{violation.rule}", violation.reason)
    if policy == "auto":
        return Decision(ResourceState.APPROVED, f"auto:{passed_rule}")
    return Decision(ResourceState.REVIEWING, None)


def decide_audio(
    policy: ReviewPolicy,
    rules: ReviewRules,
    duration_seconds: float,
    silent: bool,
    name: str = "",
    levels: MeasuredLevels | None = None,
) -> Decision:
    """The decision for a new audio resource; the ingestion code measures duration, silence and
    levels."""
    violation = check_audio(rules, duration_seconds, silent, levels)
    if violation is None and name:
        violation = check_name(rules, name)
    return decide(policy, violation, "audio-valid")


def decide_tts(policy: ReviewPolicy, rules: ReviewRules, name: str, content: str) -> Decision:
    return decide(policy, check_tts(rules, name, content), "tts-valid")


def parse_policy(value: str) -> ReviewPolicy:
    for policy in REVIEW_POLICIES:
        if value == policy:
            return policy
    raise ValueError(f"unknown review policy {value!r}; use one of {', '.join(REVIEW_POLICIES)}")

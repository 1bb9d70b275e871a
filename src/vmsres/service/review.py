"""Review policy: which State a new resource starts in, and who decided it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ReviewPolicy = Literal["auto", "manual"]
REVIEW_POLICIES: tuple[ReviewPolicy, ...] = ("auto", "manual")

STATE_REVIEWING = 0
STATE_APPROVED = 1
STATE_REJECTED = 2


@dataclass(frozen=True, slots=True)
class Decision:
    state: int
    reviewed_by: str | None
    reason: str | None = None


def initial_decision(policy: ReviewPolicy, passed_rule: str) -> Decision:
    """``passed_rule`` names the built-in checks the resource already passed at creation."""
    if policy == "auto":
        return Decision(STATE_APPROVED, f"auto:{passed_rule}")
    return Decision(STATE_REVIEWING, None)


def parse_policy(value: str) -> ReviewPolicy:
    for policy in REVIEW_POLICIES:
        if value == policy:
            return policy
    raise ValueError(f"unknown review policy {value!r}; use one of {', '.join(REVIEW_POLICIES)}")

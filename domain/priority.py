"""Priority from impact and urgency, through the ITIL priority matrix."""

from __future__ import annotations

from collections.abc import Mapping

from domain.errors import InvalidCommand

LEVELS = (1, 2, 3)
"""Impact and urgency levels: 1 high, 2 medium, 3 low."""

PRIORITY_NAMES = {1: "critical", 2: "high", 3: "medium", 4: "low"}

DEFAULT_MATRIX: Mapping[tuple[int, int], int] = {
    (1, 1): 1, (1, 2): 2, (1, 3): 3,
    (2, 1): 2, (2, 2): 3, (2, 3): 4,
    (3, 1): 3, (3, 2): 4, (3, 3): 4,
}  # fmt: skip
"""The common 3x3 ITIL matrix: (impact, urgency) -> P1 critical .. P4 low."""


def check_level(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in LEVELS:
        raise InvalidCommand(f"{name} must be 1 (high), 2 (medium) or 3 (low), not {value!r}")
    return value


def priority_of(impact: int, urgency: int, matrix: Mapping[tuple[int, int], int] = DEFAULT_MATRIX) -> int:
    """The priority (1 critical .. 4 low) of an incident with this impact and urgency."""
    return matrix[(check_level("impact", impact), check_level("urgency", urgency))]

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


def check_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITY_NAMES:
        raise InvalidCommand(f"a priority must be 1 (critical), 2 (high), 3 (medium) or 4 (low), not {value!r}")
    return value


def check_matrix(matrix: object) -> dict[tuple[int, int], int]:
    """The matrix as a plain dict once it gives a priority (1-4) to each of the 9 impact × urgency cells."""
    if not isinstance(matrix, Mapping):
        raise InvalidCommand("a priority matrix maps each (impact, urgency) to a priority")
    cells: dict[tuple[int, int], int] = {}
    for key, priority in matrix.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, int) for k in key)):
            raise InvalidCommand(f"a priority matrix cell is named by (impact, urgency), not {key!r}")
        impact, urgency = key
        cells[(check_level("impact", impact), check_level("urgency", urgency))] = check_priority(priority)
    missing = [f"impact {i} × urgency {u}" for i in LEVELS for u in LEVELS if (i, u) not in cells]
    if missing:
        raise InvalidCommand(f"the priority matrix must cover all 9 cells; it lacks {', '.join(missing)}")
    return {(i, u): cells[(i, u)] for i in LEVELS for u in LEVELS}


def matrix_rows(matrix: Mapping[tuple[int, int], int]) -> list[list[int]]:
    """The matrix as rows: one row per impact 1..3, one column per urgency 1..3."""
    return [[matrix[(i, u)] for u in LEVELS] for i in LEVELS]


def matrix_of_rows(rows: object) -> dict[tuple[int, int], int]:
    """The matrix given as 3 rows (impact 1..3) of 3 priorities (urgency 1..3)."""
    if (
        not isinstance(rows, list | tuple)
        or len(rows) != len(LEVELS)
        or any(not isinstance(r, list | tuple) or len(r) != len(LEVELS) for r in rows)
    ):
        raise InvalidCommand(
            "a priority matrix given as rows must be 3 rows (impact 1-3) of 3 priorities (urgency 1-3)"
        )
    return check_matrix({(i, u): rows[i - 1][u - 1] for i in LEVELS for u in LEVELS})

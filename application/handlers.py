"""The engine's command table: every command class and its handler, assembled from each area's table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from application import accounts, changes, configuration, incidents, monitoring, problems

if TYPE_CHECKING:
    from application.app import ItilApplication

AREAS = (incidents, accounts, problems, changes, configuration, monitoring)


def command_handlers() -> dict[type, Callable[[ItilApplication, Any], Any]]:
    """Command class -> handler(app, command); a command class named by two areas is a mistake."""
    table: dict[type, Callable[[ItilApplication, Any], Any]] = {}
    for area in AREAS:
        for command_type, handler in area.HANDLERS.items():
            if command_type in table:
                raise RuntimeError(f"{command_type.__name__} is handled by two areas")
            table[command_type] = handler
    return table

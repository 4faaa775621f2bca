"""Every area module of the engine; importing them registers their commands, routes and intake handlers."""

from __future__ import annotations

from types import ModuleType

from itil import changes, configuration, monitoring, problems
from processes import alarms
from streams import intake

AREAS: tuple[ModuleType, ...] = (problems, changes, configuration, monitoring, alarms, intake)

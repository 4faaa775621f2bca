"""The rules the aggregates' commands share: texts, names, instants, ids, and steps taken in order.

Pure: no I/O, no clock. Each rule refuses with a domain error a person understands.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from uuid import UUID

from domain.errors import IllegalTransition, InvalidCommand


def required(name: str, value: object) -> str:
    """A text that is not blank, trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(f"{name} is required")
    return value.strip()


def optional(value: object) -> str | None:
    """A text trimmed, or None when it is blank or not a text."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def one_of(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """One of the allowed values."""
    if value not in allowed:
        raise InvalidCommand(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def aware(at: object, name: str = "the instant") -> datetime:
    """A date-time that knows its offset from UTC."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand(f"{name} must be a date-time with a time zone, not {at!r}")
    return at


def check_uuid(name: str, value: object) -> UUID:
    """A UUID."""
    if not isinstance(value, UUID):
        raise InvalidCommand(f"{name} must be a UUID, not {value!r}")
    return value


def check_actor_and_instant(actor: object, at: object) -> None:
    """Who gives a command, and when: every command names both."""
    required("actor", actor)
    aware(at)


class InOrder:
    """Mixin for an aggregate that refuses a command dated before its last recorded step."""

    last_at: datetime

    @abstractmethod
    def _name(self) -> str:
        """The aggregate as a refusal names it: "incident <id>"."""

    def _check(self, verb: str, actor: str, at: datetime) -> None:
        required("actor", actor)
        aware(at)
        if at < self.last_at:
            raise InvalidCommand(
                f"cannot {verb} {self._name()} at {at.isoformat()}: that is before its"
                f" last recorded step at {self.last_at.isoformat()}"
            )

    def _stamp(self, at: datetime) -> None:
        """For the mutators: the step just recorded is the last one."""
        self.last_at = at


class StatusFlow(InOrder):
    """Mixin for an aggregate whose status says which commands it takes now."""

    status: str

    @abstractmethod
    def _refusal(self, verb: str) -> str:
        """Why `verb` is refused in the current status: "it is closed; log a new one"."""

    def _refuse_unless(self, verb: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise IllegalTransition(f"cannot {verb} {self._name()}: {self._refusal(verb)}")

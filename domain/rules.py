"""The rules the aggregates' commands share: texts, names, instants, ids, and steps taken in order.

Pure: no I/O, no clock. Each rule refuses with a domain error a person understands.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from domain.errors import IllegalTransition, InvalidCommand

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
"""Every instant a command carries lies in [EARLIEST, LATEST): the business calendars, SLA clocks and
correlation windows compute on them, and a year 1 or 9999 would overflow their arithmetic."""
MAX_AHEAD = timedelta(days=5 * 366)
"""How far after the command an effective date or a freeze window may lie."""
MAX_NAME_LENGTH = 200

_NOT_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""Control characters but tab, newline and carriage return, and lone surrogates (no UTF-8 for them)."""
_NOT_IN_NAME = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _refuse_characters(name: str, value: str, forbidden: re.Pattern[str], what: str) -> None:
    found = forbidden.search(value)
    if found is not None:
        raise InvalidCommand(
            f"{name} must not contain {what}: U+{ord(found.group()):04X} at position {found.start() + 1}"
        )


def required(name: str, value: object) -> str:
    """A text that is not blank, trimmed, with no control character (tab and line breaks allowed) and
    no lone surrogate."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand(f"{name} is required")
    _refuse_characters(name, value, _NOT_IN_TEXT, "control characters or lone surrogates")
    return value.strip()


def optional(value: object, name: str = "a text") -> str | None:
    """A text trimmed, or None when it is blank or not a text; checked as `required` checks one."""
    if not isinstance(value, str) or not value.strip():
        return None
    return required(name, value)


def check_name(name: str, value: object) -> str:
    """A name people and systems use on one line (an account, a CI): required, no line break, tab or other
    control character, at most MAX_NAME_LENGTH characters."""
    if isinstance(value, str):
        _refuse_characters(name, value, _NOT_IN_NAME, "line breaks, tabs or other control characters")
    text = required(name, value)
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidCommand(f"{name} must be at most {MAX_NAME_LENGTH} characters, not {len(text)}")
    return text


def one_of(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """One of the allowed values."""
    if value not in allowed:
        raise InvalidCommand(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def aware(at: object, name: str = "the instant") -> datetime:
    """A date-time that knows its offset from UTC, from 2000 to 2099 (see EARLIEST, LATEST)."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand(f"{name} must be a date-time with a time zone, not {at!r}")
    try:
        in_range = EARLIEST <= at < LATEST
    except OverflowError:  # an offset that takes it past year 1 or 9999 in UTC
        in_range = False
    if not in_range:
        raise InvalidCommand(f"{name} must lie between {EARLIEST.year} and {LATEST.year - 1}, not {at.isoformat()}")
    return at


def within_reach(name: str, value: datetime, at: datetime) -> datetime:
    """An instant no more than MAX_AHEAD after the command's own (an effective date, a freeze window)."""
    if value > at + MAX_AHEAD:
        raise InvalidCommand(
            f"{name} must lie within {MAX_AHEAD.days // 366} years of the command, not {value.isoformat()}"
        )
    return value


def check_uuid(name: str, value: object) -> UUID:
    """A UUID."""
    if not isinstance(value, UUID):
        raise InvalidCommand(f"{name} must be a UUID, not {value!r}")
    return value


def check_actor_and_instant(actor: object, at: object) -> None:
    """Who gives a command, and when: every command names both."""
    required("actor", actor)
    aware(at)


MAX_NESTING = 20
"""How deep the lists and mappings an event carries may nest (rules, attributes, terms)."""


def refuse_unclean(values: Mapping[str, Any]) -> None:
    """Every text in these event values (nested in lists and mappings too, keys included) is free of
    control characters (tab and line breaks allowed) and lone surrogates: what the stores can write,
    what a view or another service can read. Raises InvalidCommand naming the field."""
    for key, value in values.items():
        _refuse_unclean(key, value, 0)


def _refuse_unclean(path: str, value: Any, depth: int) -> None:
    if isinstance(value, str):
        _refuse_characters(path, value, _NOT_IN_TEXT, "control characters or lone surrogates")
    elif isinstance(value, list | tuple | frozenset | set):
        if depth >= MAX_NESTING:
            raise InvalidCommand(f"{path} nests more than {MAX_NESTING} levels deep")
        for i, item in enumerate(value):
            _refuse_unclean(f"{path}[{i}]", item, depth + 1)
    elif isinstance(value, Mapping):
        if depth >= MAX_NESTING:
            raise InvalidCommand(f"{path} nests more than {MAX_NESTING} levels deep")
        for key, item in value.items():
            if isinstance(key, str):
                _refuse_characters(f"a key of {path}", key, _NOT_IN_TEXT, "control characters or lone surrogates")
            _refuse_unclean(f"{path}.{key}", item, depth + 1)


class TextsChecked:
    """Mixin for an aggregate (before `Aggregate` in its bases): no event it triggers carries a text the
    stores cannot write or other services cannot read. Checked before the event is applied, so a
    refused command changes nothing, whichever door it came in by (HTTP, intake, commands topic, CLI)."""

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        refuse_unclean(kwargs)
        super().trigger_event(event_class, **kwargs)  # type: ignore[misc]

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Any:  # noqa: A002 - the library's name
        refuse_unclean(kwargs)
        return super()._create(event_class, id=id, **kwargs)  # type: ignore[misc]


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

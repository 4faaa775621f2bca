"""Errors the domain raises when a command is refused."""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused by a business rule; the message says what and why."""


class InvalidCommand(DomainError):
    """A command's arguments are not acceptable (missing, out of range, unknown value)."""


class IllegalTransition(DomainError):
    """The command is not allowed in the aggregate's current state."""


class NotFound(DomainError):
    """The command names an aggregate that does not exist."""


class ConcurrencyConflict(DomainError):
    """The aggregate kept changing under the command (other writers saved first each time); try again."""

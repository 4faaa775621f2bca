"""What every handler that saves with retries shares."""

from __future__ import annotations

from domain.errors import ConcurrencyConflict

__all__ = ["CONFLICT_RETRIES", "ConcurrencyConflict"]

CONFLICT_RETRIES = 5
"""How often a handler reloads and tries again when another writer saved the same aggregate first."""

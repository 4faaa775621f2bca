"""The private parts of marshmallow that the exact fast loader (streams.fastload) relies on, behind one door.

The fast loader stands in for `Schema.load`, so it must know when a schema changes how `load`
works: a class that overrides one of the private methods `load` goes through, or that registers
load hooks (kept by marshmallow in the private `Schema._hooks`). `tests/unit/test_library_internals.py`
fails as soon as these move or change shape, and pyproject.toml pins the version they were read
from (marshmallow 4.4).
"""

from __future__ import annotations

from marshmallow import Schema
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

LOAD_METHODS = (
    "load", "_do_load", "_deserialize", "_call_and_store", "_invoke_field_validators",
    "_invoke_schema_validators", "_invoke_load_processors", "_invoke_processors",
)  # fmt: skip
"""The Schema methods `load` goes through (all but `load` private), in the fast loader's stead."""

LOAD_HOOKS = (PRE_LOAD, POST_LOAD, VALIDATES, VALIDATES_SCHEMA)
"""The kinds of hook (`@pre_load`, `@post_load`, `@validates`, `@validates_schema`) that `load` runs."""


def overridden_load_methods(schema_class: type[Schema]) -> list[str]:
    """The methods of LOAD_METHODS that `schema_class` overrides, in that order."""
    return [name for name in LOAD_METHODS if getattr(schema_class, name) is not getattr(Schema, name)]


def load_hooks(schema: Schema) -> list[str]:
    """The kinds of load hook (of LOAD_HOOKS, in that order) that `schema` has."""
    hooks = schema._hooks  # the metaclass's `resolve_hooks()`: hook kind -> the methods registered for it
    return [tag for tag in LOAD_HOOKS if hooks.get(tag)]

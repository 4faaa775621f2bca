"""An exact fast path for marshmallow's `Schema.load`, compiled once from a schema.

`compile_loader(schema)` returns a function that, given a message body, returns exactly what
`schema.load(body)` would return, or None when it cannot vouch for the body: the caller then asks
marshmallow, which stays the only one to accept anything unusual and the only one to refuse (so every
error message still comes from the schema). A loader never refuses and never accepts what marshmallow
would refuse.

Only schemas made entirely of what is replicated here compile (marshmallow 4.4's own code, read field by
field): String, Integer, UUID, DateTime/AwareDateTime in ISO format, Dict with String keys and no value
field; the validators Length, Equal, OneOf and Range; no schema hooks, no field pre_load/post_load, no
dotted attributes, `many` and `partial` off. Anything else returns None from `compile_loader`
(`why_not_compiled` says why). Within a compiled schema, the loader falls back whenever a value is not
of the one JSON type it handles (bytes, bools for integers, None, non-dict bodies…), a required field
is missing, an unknown field is present under RAISE, or any check fails.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, fields, missing, validate

from streams.marshmallow_internals import load_hooks, overridden_load_methods

Loader = Callable[[dict[str, Any]], dict[str, Any] | None]
"""A compiled loader: the body's loaded dict, or None for "ask marshmallow"."""

Check = Callable[[Any], bool]
Convert = Callable[[Any], Any]
_Spec = tuple[str, str, Convert, Check | None, bool, Any]
"""One field: its data key, its attribute, its converter, its validators as one check, required, load_default."""

_FAIL = object()
"""What a field converter returns for a value it does not vouch for."""

_ISO_FORMATS = ("iso", "iso8601")


class NotCompilable(Exception):
    """A schema (or one of its fields) uses something the fast path does not replicate exactly."""


def compile_loader(schema: Schema) -> Loader | None:
    """The exact fast loader of `schema`, or None when the schema uses anything not replicated here."""
    try:
        return _compile(schema)
    except NotCompilable:
        return None


def why_not_compiled(schema: Schema) -> str | None:
    """Why `schema` does not compile, or None when it does."""
    try:
        _compile(schema)
    except NotCompilable as error:
        return str(error)
    return None


# -- the schema -----------------------------------------------------------------------------------


def _compile(schema: Schema) -> Loader:
    schema_class = type(schema)
    overridden = overridden_load_methods(schema_class)  # the methods a loader stands in for
    if overridden:
        raise NotCompilable(f"{schema_class.__name__} overrides Schema.{overridden[0]}")
    hooks = load_hooks(schema)
    if hooks:
        raise NotCompilable(f"{schema_class.__name__} has {', '.join(hooks)} hooks")
    if schema.dict_class is not dict:
        raise NotCompilable("the schema's dict_class is not dict")
    if schema.many is not False or schema.partial not in (None, False):
        raise NotCompilable("many or partial loading")
    unknown = schema.unknown
    if unknown not in (RAISE, EXCLUDE, INCLUDE):
        raise NotCompilable(f"unknown={unknown!r}")

    specs: list[_Spec] = []
    for name, field in schema.load_fields.items():
        data_key = field.data_key if field.data_key is not None else name
        attribute = field.attribute or name
        if not isinstance(data_key, str) or not isinstance(attribute, str) or "." in attribute:
            raise NotCompilable(f"{name}: data_key or attribute is not a plain name")
        try:
            convert = _converter(field)
            check = _all([_check(validator) for validator in field.validators])
        except NotCompilable as error:
            raise NotCompilable(f"{name}: {error}") from None
        specs.append((data_key, attribute, convert, check, field.required, field.load_default))
    return _loader(tuple(specs), frozenset(s[0] for s in specs), unknown)


def _loader(specs: Sequence[_Spec], data_keys: frozenset[str], unknown: str) -> Loader:
    refuse_unknown = unknown == RAISE
    include_unknown = unknown == INCLUDE

    def load(data: dict[str, Any]) -> dict[str, Any] | None:
        if type(data) is not dict or (refuse_unknown and not data.keys() <= data_keys):
            return None
        try:
            result: dict[str, Any] = {}
            for data_key, attribute, convert, check, required, default in specs:
                value = data.get(data_key, missing)
                if value is missing:
                    if required:
                        return None
                    if default is not missing:
                        result[attribute] = default() if callable(default) else default
                    continue
                if value is None:
                    return None
                value = convert(value)
                if value is _FAIL or (check is not None and not check(value)):
                    return None
                result[attribute] = value
            if include_unknown:
                for key in set(data) - data_keys:
                    result[key] = data[key]
            return result
        except Exception:  # whatever marshmallow would make of it, it says so itself
            return None

    return load


# -- fields ---------------------------------------------------------------------------------------


def _converter(field: fields.Field) -> Convert:
    if field.pre_load or field.post_load:
        raise NotCompilable("field pre_load/post_load")
    kind = type(field)
    if kind is fields.String:
        return _string()
    if kind is fields.Integer:
        return _integer()
    if kind is fields.UUID:
        return _uuid()
    if kind is fields.DateTime or kind is fields.AwareDateTime:
        assert isinstance(field, fields.DateTime)
        data_format = field.format or field.DEFAULT_FORMAT
        if data_format not in _ISO_FORMATS or field.DESERIALIZATION_FUNCS.get(data_format) != dt.datetime.fromisoformat:
            raise NotCompilable(f"datetime format {data_format!r}")
        if kind is fields.AwareDateTime:
            assert isinstance(field, fields.AwareDateTime)
            return _aware_datetime(field.default_timezone)
        return _datetime()
    if kind is fields.Dict:
        assert isinstance(field, fields.Dict)
        if field.value_field is not None:
            raise NotCompilable("Dict with a value field")
        key_field = field.key_field
        if key_field is not None and (
            type(key_field) is not fields.String or key_field.validators or key_field.pre_load or key_field.post_load
        ):
            raise NotCompilable("Dict keys other than a plain String")
        return _dict(string_keys=key_field is not None)
    raise NotCompilable(f"{kind.__name__} fields are not replicated")


def _string() -> Convert:
    def convert(value: Any) -> Any:
        return value if type(value) is str else _FAIL  # bytes, and str subclasses, go to marshmallow

    return convert


def _integer() -> Convert:
    def convert(value: Any) -> Any:
        return value if type(value) is int else _FAIL  # bool, float and numeric strings go to marshmallow

    return convert


def _uuid() -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not str:
            return _FAIL
        try:
            loaded = uuid.UUID(value)
        except ValueError:
            return _FAIL
        return loaded

    return convert


def _datetime() -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not str:
            return _FAIL
        try:
            loaded = dt.datetime.fromisoformat(value)
        except ValueError:
            return _FAIL
        return loaded

    return convert


def _aware_datetime(default_timezone: dt.tzinfo | None) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not str:
            return _FAIL
        try:
            loaded = dt.datetime.fromisoformat(value)
        except ValueError:
            return _FAIL
        zone = loaded.tzinfo
        if zone is None or zone.utcoffset(loaded) is None:  # marshmallow.utils.is_aware
            if default_timezone is None:
                return _FAIL
            loaded = loaded.replace(tzinfo=default_timezone)
        return loaded

    return convert


def _dict(*, string_keys: bool) -> Convert:
    def convert(value: Any) -> Any:
        if type(value) is not dict:
            return _FAIL
        if string_keys:
            for key in value:
                if type(key) is not str:
                    return _FAIL
        return dict(value)

    return convert


# -- validators -----------------------------------------------------------------------------------


def _check(validator: Any) -> Check:
    """A predicate true exactly when `validator` passes (an exception means: ask marshmallow)."""
    kind = type(validator)
    if kind is validate.Length:
        return _length(validator.min, validator.max, validator.equal)
    if kind is validate.Equal:
        comparable = validator.comparable
        return lambda value: not value != comparable
    if kind is validate.OneOf:
        choices = validator.choices
        if type(choices) not in (tuple, list, set, frozenset):
            raise NotCompilable("OneOf over something other than a tuple, list or set")
        return lambda value: value in choices
    if kind is validate.Range:
        return _range(validator.min, validator.max, validator.min_inclusive, validator.max_inclusive)
    raise NotCompilable(f"validator {validator!r} is not replicated")


def _all(checks: list[Check]) -> Check | None:
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


def _length(least: int | None, most: int | None, equal: int | None) -> Check:
    if equal is not None:
        return lambda value: not len(value) != equal
    if least is not None and most is not None:
        return lambda value: not (len(value) < least or len(value) > most)
    if least is not None:
        return lambda value: not len(value) < least
    if most is not None:
        return lambda value: not len(value) > most
    return lambda value: len(value) >= 0


def _range(least: Any, most: Any, min_inclusive: bool, max_inclusive: bool) -> Check:
    def check(value: Any) -> bool:
        if least is not None and (value < least if min_inclusive else value <= least):
            return False
        return not (most is not None and (value > most if max_inclusive else value >= most))

    return check

"""JSON typed (or posted) in Pilot's forms, read as the partner API reads it (config/http.py):
never a 500 for what an operator can send.

The standard library's parser takes NaN and Infinity (PostgreSQL refuses them: 500), a number
too large for a double as infinity, a lone surrogate or NUL (PostgreSQL cannot store either),
and recurses until Python's stack runs out on deep nesting (RecursionError: 500). orjson
refuses all but NUL; NUL is looked for as the API does, and nesting is bounded lower than
orjson's 1024 levels, so that the value can be written back (``json.dumps`` recurses too).
"""

from typing import Any

import orjson
from django import forms
from django.core.exceptions import ValidationError

from .http import nul_path

MAX_DEPTH = 64
TOO_DEEP = f"JSON nests at most {MAX_DEPTH} levels deep."
NOT_FINITE = "NaN and Infinity are not JSON numbers: give a finite number (or text)."


def pilot_json_loads(text: str | bytes) -> Any:
    """The value of ``text``, or a ValidationError saying what is wrong with it."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "infinity" in message or _at_constant(exc):
            raise ValidationError(NOT_FINITE, code="not_finite") from exc
        if "depth limit" in message:
            raise ValidationError(TOO_DEEP, code="max_depth") from exc
        raise ValidationError(f"Not valid JSON: {message}", code="invalid") from exc
    if b"\\u0000" in raw and nul_path(value) is not None:
        raise ValidationError("Text cannot contain NUL (\\u0000).", code="nul_character")
    if _depth(value) > MAX_DEPTH:
        raise ValidationError(TOO_DEEP, code="max_depth")
    return value


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value`` (without recursing)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((inner, depth + 1) for inner in item)
    return deepest


def _at_constant(exc: orjson.JSONDecodeError) -> bool:
    """Whether the parse failed at a bare NaN or Infinity (for a message that says so)."""
    rest = str(exc.doc)[exc.pos : exc.pos + 9]
    return rest.startswith(("NaN", "Infinity", "-Infinity", "-NaN"))


class PilotJSONField(forms.JSONField):
    """Django's JSON form field, parsing with :func:`pilot_json_loads`: what it refuses is a
    form error, also when the page is shown again with the posted text or compared with the
    value the page loaded (Django's field calls ``json.loads`` there too)."""

    def to_python(self, value):
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, list | dict | int | float | forms.fields.JSONString):
            return value
        converted = pilot_json_loads(value)
        if isinstance(converted, str):
            return forms.fields.JSONString(converted)
        return converted

    def bound_data(self, data, initial):
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return pilot_json_loads(data)
        except ValidationError:
            return forms.fields.InvalidJSONInput(data)

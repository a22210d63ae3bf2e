"""Campaign rules in CEL (Common Expression Language), compiled and type-checked at save time.

Variables an expression sees:

- ``context.<field>``: the event's transaction context, one variable per property of the
  trigger's JSON Schema, typed from it (number -> double, integer -> int, string, bool, ...).
  Numbers are doubles: write ``context.amount >= 20.0``.
- ``user``: the end user's attributes, a ``map(string, dyn)``.
- ``event.trigger``, ``event.occurred_at`` (timestamp), ``event.tags`` (map), ``event.mode``.
- ``facts.<name>``: the campaign's declared per-user aggregates (count -> int, sum -> double).

CEL has no loops, only comprehensions over the (size-limited) event data, so evaluation is
bounded; expressions are limited in length, and run in the CEL runtime with no access to
Python, files or the network.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cel_expr_python import cel

MAX_EXPRESSION_LENGTH = 2000
T = cel.Type
_JSON_TYPES = {
    "string": T.STRING,
    "integer": T.INT,
    "number": T.DOUBLE,
    "boolean": T.BOOL,
    "array": T.List(T.DYN),
    "object": T.Map(T.STRING, T.DYN),
}
_ERROR_LOCATION = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")


class RuleError(ValueError):
    """An expression that does not compile or type-check; the message names the position."""


@dataclass(frozen=True)
class ContextField:
    name: str
    json_type: str | None

    def coerce(self, value: Any) -> Any:
        if self.json_type == "number" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.json_type == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def context_fields(schema: dict) -> list[ContextField]:
    fields = []
    for name, spec in (schema.get("properties") or {}).items():
        json_type = spec.get("type") if isinstance(spec, dict) else None
        fields.append(ContextField(name, json_type if isinstance(json_type, str) else None))
    return fields


def _cel_type(json_type: str | None):
    return _JSON_TYPES.get(json_type, T.DYN)


class RuleEnvironment:
    """The CEL environment of one campaign: its trigger's context fields and its facts."""

    def __init__(self, schema: dict, fact_types: dict[str, str]) -> None:
        self.fields = context_fields(schema)
        variables = {f"context.{field.name}": _cel_type(field.json_type) for field in self.fields}
        variables |= {
            f"facts.{name}": T.INT if aggregate == "count" else T.DOUBLE
            for name, aggregate in fact_types.items()
        }
        variables |= {
            "user": T.Map(T.STRING, T.DYN),
            "event.trigger": T.STRING,
            "event.occurred_at": T.TIMESTAMP,
            "event.tags": T.Map(T.STRING, T.STRING),
            "event.mode": T.STRING,
        }
        self._env = cel.NewEnv(variables=variables)

    def compile(self, source: str, *, returns: tuple[str, ...]) -> "cel.Expression":
        if len(source) > MAX_EXPRESSION_LENGTH:
            raise RuleError(f"Longer than {MAX_EXPRESSION_LENGTH} characters")
        try:
            expression = self._env.compile(source)
        except RuntimeError as exc:
            raise RuleError(_describe(str(exc))) from exc
        returned = expression.return_type().name().lower()
        if returned not in (*returns, "dyn"):
            raise RuleError(f"Must evaluate to {' or '.join(returns)}, not {returned}")
        return expression

    def activation(self, event_data: dict, facts: dict[str, Any]) -> Any:
        """One event's variables, bound once and shared by every expression of this env."""
        if facts:
            event_data = {**event_data, **{f"facts.{name}": v for name, v in facts.items()}}
        return self._env.Activation(event_data)


def event_data(
    fields: list[ContextField],
    *,
    context: dict,
    user: dict,
    trigger: str,
    occurred_at: datetime,
    tags: dict,
    mode: str,
) -> dict[str, Any]:
    """The variables of one event, common to all campaigns of its trigger; absent context
    fields stay unbound (a condition reading one is not met)."""
    data = {
        f"context.{field.name}": field.coerce(context[field.name])
        for field in fields
        if context.get(field.name) is not None
    }
    data["user"] = user
    data["event.trigger"] = trigger
    data["event.occurred_at"] = occurred_at
    data["event.tags"] = tags
    data["event.mode"] = mode
    return data


def _describe(message: str) -> str:
    """``... ERROR: <input>:1:8: found no ...`` -> ``line 1, column 8: found no ...``."""
    match = _ERROR_LOCATION.search(message)
    if not match:
        return message.split("\n", 1)[0]
    line, column, text = match.groups()
    hint = ""
    if "applied to '(double, int)'" in text or "applied to '(int, double)'" in text:
        hint = " (numbers from the context are doubles: write 20.0, not 20)"
    return f"line {line}, column {column}: {text.strip()}{hint}"


class Problem:
    """Why evaluating an expression gave no value: an absent variable, or an error."""

    ABSENT = "absent"
    ERROR = "error"


def evaluate(expression: "cel.Expression", activation: Any) -> tuple[str | None, Any]:
    """Returns (None, value), (Problem.ABSENT, message) or (Problem.ERROR, message)."""
    try:
        result = expression.eval(activation)
    except Exception as exc:
        return Problem.ERROR, str(exc)
    if result.type() != T.ERROR:
        return None, result.value()
    message = str(result.value())
    if "No value with name" in message or "Key not found" in message:
        return Problem.ABSENT, message
    return Problem.ERROR, message

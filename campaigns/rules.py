"""Campaign rules in CEL (Common Expression Language), compiled and type-checked at save time.

Variables an expression sees:

- ``context.<field>``: the event's transaction context, one variable per property of the
  trigger's JSON Schema, typed from it (number -> double, integer -> int, string, bool, ...).
  Numbers are doubles: write ``context.amount >= 20.0``.
- ``user``: the end user's attributes, a ``map(string, dyn)``; with a partnership's
  user-attribute schema, ``user.<name>`` is one variable per property, typed from it like the
  context, and a ``user.<name>`` the schema does not declare is refused (``user["name"]`` and
  ``has(user.name)`` still read the map, unchecked).
- ``event.trigger``, ``event.occurred_at`` (timestamp), ``event.tags`` (map), ``event.mode``.
- ``facts.<name>``: the campaign's declared per-user aggregates (count -> int, sum -> double).

CEL has no loops, only comprehensions over the (size-limited) event data, so evaluation is
bounded; expressions are limited in length, and run in the CEL runtime with no access to
Python, files or the network.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

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


class Position(NamedTuple):
    """Where in an expression a problem is: 1-based line, and 1-based column counted in
    characters (code points), as CEL reports them (``ERROR: <input>:line:column: ...``)."""

    line: int
    column: int


class RuleError(ValueError):
    """An expression that does not compile or type-check; the message names the position,
    which is also on ``position`` (None for problems of the whole expression)."""

    def __init__(self, message: str, position: Position | None = None) -> None:
        super().__init__(message)
        self.position = position


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


class Function(NamedTuple):
    signature: str
    returns: str
    description: str
    example: str


# CEL's standard library, as far as campaign rules use it.
FUNCTIONS = (
    Function("size(x)", "int", "Length of a string, list or map", "size(user) > 0"),
    Function("s.startsWith(p)", "bool", "The string starts with p", '"ab".startsWith("a")'),
    Function("s.endsWith(p)", "bool", "The string ends with p", '"ab".endsWith("b")'),
    Function("s.contains(p)", "bool", "The string contains p", '"ab".contains("b")'),
    Function(
        "s.matches(re)",
        "bool",
        "The string matches a regular expression (RE2)",
        '"5411".matches("^54")',
    ),
    Function("x in list / key in map", "bool", "Membership", '"gold" in ["gold", "silver"]'),
    Function(
        "has(user.name)",
        "bool",
        "The user has this attribute (or a map this key)",
        "has(user.tier)",
    ),
    Function("c ? a : b", "type of a and b", "If c then a else b", "true ? 1.0 : 2.0"),
    Function("int(x)", "int", "To a whole number (truncates a double)", "int(2.7) == 2"),
    Function(
        "double(x)", "double", "To a double: compare an int with a number field", "double(2) > 1.5"
    ),
    Function("string(x)", "string", "To a string", 'string(1) == "1"'),
    Function(
        "timestamp(s)",
        "timestamp",
        "An RFC 3339 time",
        'event.occurred_at > timestamp("2026-01-01T00:00:00Z")',
    ),
    Function(
        "duration(s)",
        "duration",
        'A duration such as "36h" or "90m"',
        'event.occurred_at - duration("36h") < event.occurred_at',
    ),
    Function(
        "t.getHours(zone)",
        "int",
        "Hour of day of a timestamp, in a time zone",
        'event.occurred_at.getHours("Europe/Paris") < 12',
    ),
    Function(
        "t.getDayOfWeek(zone)",
        "int",
        "Day of week, 0 = Sunday",
        'event.occurred_at.getDayOfWeek("Europe/Paris") == 6',
    ),
    Function(
        "t.getDayOfMonth(zone)",
        "int",
        "Day of month, 0-based",
        'event.occurred_at.getDayOfMonth("UTC") == 0',
    ),
    Function("t.getMonth(zone)", "int", "Month, 0 = January", "event.occurred_at.getMonth() == 11"),
    Function(
        "list.exists(x, p)", "bool", "Some element satisfies p", "[1.0, 2.0].exists(x, x > 1.5)"
    ),
    Function("list.all(x, p)", "bool", "Every element satisfies p", "[1.0, 2.0].all(x, x > 0.0)"),
    Function(
        "list.filter(x, p)",
        "list",
        "The elements that satisfy p",
        "size([1, 2].filter(x, x > 1)) == 1",
    ),
    Function("list.map(x, f)", "list", "Each element transformed", "[1, 2].map(x, x * 2)[0] == 2"),
)


def context_fields(schema: dict) -> list[ContextField]:
    fields = []
    for name, spec in (schema.get("properties") or {}).items():
        json_type = spec.get("type") if isinstance(spec, dict) else None
        fields.append(ContextField(name, json_type if isinstance(json_type, str) else None))
    return fields


def _cel_type(json_type: str | None):
    return _JSON_TYPES.get(json_type, T.DYN)


class RuleEnvironment:
    """The CEL environment of one campaign: its trigger's context fields, its facts, and the
    partnership's user attributes (``user_schema``; none declared: ``user`` is only a map)."""

    def __init__(
        self, schema: dict, fact_types: dict[str, str], user_schema: dict | None = None
    ) -> None:
        self.fields = context_fields(schema)
        self.user_fields = context_fields(user_schema or {})
        variables = {f"context.{field.name}": _cel_type(field.json_type) for field in self.fields}
        variables |= {
            f"user.{field.name}": _cel_type(field.json_type) for field in self.user_fields
        }
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
        self._variables = variables
        self._declared = {field.name for field in self.user_fields}
        hidden = {USER_MAP_ALIAS: T.Map(T.STRING, T.DYN)} if self._declared else {}
        self._env = cel.NewEnv(variables={**variables, **hidden})

    def variables(self) -> dict[str, str]:
        """Every variable a rule may read, with its CEL type in words (``context.amount``:
        ``double``): the declarations this environment compiles with."""
        return {name: kind.name().lower() for name, kind in self._variables.items()}

    def functions(self) -> list["Function"]:
        """The catalogue's functions this environment accepts: each example is compiled here,
        so a function is listed only if a rule could call it. (CEL's Python binding does not
        list its declarations; the catalogue says what each one is for.)"""
        accepted = []
        for function in FUNCTIONS:
            try:
                self._env.compile(self._has_rewritten(function.example))
            except RuntimeError:
                continue
            accepted.append(function)
        return accepted

    def compile(self, source: str, *, returns: tuple[str, ...]) -> "cel.Expression":
        if len(source) > MAX_EXPRESSION_LENGTH:
            raise RuleError(f"Longer than {MAX_EXPRESSION_LENGTH} characters")
        try:
            expression = self._env.compile(self._has_rewritten(source))
        except RuntimeError as exc:
            raise RuleError(*_describe(str(exc))) from exc
        if self._declared:
            _check_user_attributes(source, self._declared)
        returned = expression.return_type().name().lower()
        if returned not in (*returns, "dyn"):
            raise RuleError(f"Must evaluate to {' or '.join(returns)}, not {returned}")
        return expression

    def _has_rewritten(self, source: str) -> str:
        """``has(user.<declared>)`` tests the map, as without a schema: CEL would resolve the
        declared variable there, which ``has()`` refuses. The map is named by an alias of the
        same length as ``user``, so every error position stays where the partner wrote it."""
        if not self._declared:
            return source
        code = _blank_literals(source)
        for match in _HAS_USER.finditer(code):
            if match.group(2) in self._declared:
                start, end = match.span(1)
                source = source[:start] + USER_MAP_ALIAS + source[end:]
        return source

    def activation(self, event_data: dict, facts: dict[str, Any]) -> Any:
        """One event's variables, bound once and shared by every expression of this env."""
        if facts:
            event_data = {**event_data, **{f"facts.{name}": v for name, v in facts.items()}}
        if self._declared:
            event_data = {**event_data, USER_MAP_ALIAS: event_data["user"]}
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
    user_fields: list[ContextField] = (),
) -> dict[str, Any]:
    """The variables of one event, common to all campaigns of its trigger; absent context
    fields and declared user attributes stay unbound (a condition reading one is not met), as
    do values that do not coerce to their declared type."""
    data = {}
    for prefix, values, declared in (("context", context, fields), ("user", user, user_fields)):
        for field in declared:
            value = _coerced(field, values.get(field.name))
            if value is not None:
                data[f"{prefix}.{field.name}"] = value
    data["user"] = user
    data["event.trigger"] = trigger
    data["event.occurred_at"] = occurred_at
    data["event.tags"] = tags
    data["event.mode"] = mode
    return data


def _coerced(field: ContextField, value: Any) -> Any:
    """The value as its declared type, or None (unbound) if it does not coerce: an integer
    past a float's range in a number field (an attribute stored before its schema said so)."""
    if value is None:
        return None
    try:
        return field.coerce(value)
    except OverflowError:
        return None


# ``user.<name>`` outside ``has(...)`` and not a call, in source whose string literals and
# comments are blanked.
_USER_SELECT = re.compile(r"(?<![\w.])user\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_HAS_OPEN = re.compile(r"\bhas\s*\(\s*$")
_CALL_OPEN = re.compile(r"\s*\(")
_HAS_USER = re.compile(r"(?<![\w.])has\s*\(\s*(user)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")
# The user map's second name, for has(user.<declared>): as long as "user" (see _has_rewritten).
USER_MAP_ALIAS = "_usr"
_LITERAL = re.compile(
    r"""[rRbB]{0,2}('''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(\\.|[^'\\\n])*'|"(\\.|[^"\\\n])*")|//[^\n]*"""
)


def _blank_literals(source: str) -> str:
    """The source with its string literals and comments blanked (positions kept)."""
    return _LITERAL.sub(lambda match: re.sub(r"[^\n]", " ", match.group(0)), source)


def _check_user_attributes(source: str, declared: set[str]) -> None:
    """CEL reads an undeclared ``user.tyer`` as a key of the ``user`` map (no error, and the
    rule is simply never met): with a schema, a dotted name it does not declare is refused."""
    code = _blank_literals(source)
    for match in _USER_SELECT.finditer(code):
        name = match.group(1)
        if name in declared or _HAS_OPEN.search(code[: match.start()]):
            continue
        if _CALL_OPEN.match(code, match.end()):  # a method of the map: user.exists(k, ...)
            continue
        start = match.start(1)
        line = code.count("\n", 0, start) + 1
        column = start - (code.rfind("\n", 0, start) + 1) + 1
        known = ", ".join(sorted(declared))
        raise RuleError(
            f"line {line}, column {column}: user.{name} is not an attribute of the "
            f"partnership's user-attribute schema ({known}); read an undeclared one as "
            f'user["{name}"]',
            Position(line, column),
        )


def _describe(message: str) -> tuple[str, Position | None]:
    """``... ERROR: <input>:1:8: found no ...`` -> ``line 1, column 8: found no ...`` and its
    position; the first error when CEL reports several."""
    match = _ERROR_LOCATION.search(message)
    if not match:
        return message.split("\n", 1)[0], None
    line, column, text = match.groups()
    hint = ""
    if "applied to '(double, int)'" in text or "applied to '(int, double)'" in text:
        hint = " (numbers from the context are doubles: write 20.0, not 20)"
    position = Position(int(line), int(column))
    return f"line {line}, column {column}: {text.strip()}{hint}", position


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


# ``context.<name> == "literal"`` (either side), a whole conjunct of a condition.
_EQUALS = re.compile(
    r"""^\s*(?:context\.([A-Za-z_][A-Za-z0-9_]*)\s*==\s*"([^"\\\n]*)"|"""
    r""""([^"\\\n]*)"\s*==\s*context\.([A-Za-z_][A-Za-z0-9_]*))\s*$"""
)


def condition_guards(source: str, fields: list[ContextField]) -> tuple[tuple[str, str], ...]:
    """The conjuncts of a condition that compare a string field of the context with a string
    literal (``context.mcc == "5411" && ...``), as (field, literal) pairs.

    A bound string that differs from the literal makes that conjunct false, and CEL's ``&&``
    is false as soon as one side is (whatever the others give, errors and absent variables
    included), so the condition is false with no problem: the workers skip evaluating it for
    such an event (``campaigns.judge``). Only a top-level chain of ``&&`` is split; anything
    else (``||``, ``?:``, a comment) gives no guard, and the condition is always evaluated."""
    strings = {field.name for field in fields if field.json_type == "string"}
    # A triple-quoted literal may hold an escaped quote ("""\"""" is one quote), which the
    # literal blanking does not follow: a `||` after one could pass for a top-level `&&` chain.
    if not strings or "//" in source or '"""' in source or "'''" in source:
        return ()
    code = _blank_literals(source)
    depth, start, conjuncts = 0, 0, []
    for index, char in enumerate(code):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and char in "|?":
            return ()
        elif depth == 0 and code.startswith("&&", index):
            conjuncts.append(source[start:index])
            start = index + 2
    conjuncts.append(source[start:])
    guards = []
    for conjunct in conjuncts:
        match = _EQUALS.match(conjunct)
        if match:
            field, literal = match.group(1, 2) if match.group(1) else match.group(4, 3)
            if field in strings:
                guards.append((field, literal))
    return tuple(guards)

"""An example transaction context for a trigger's schema, and the curl that sends it.

The example is checked against the schema with the validator ingest uses; what the generator
cannot satisfy (a pattern it cannot read, a raw-JSON construct) is said, not hidden.
"""

import json
import re
import re._parser as sre  # Python's own regex parser: reads a pattern to build a match
import shlex
from dataclasses import dataclass
from typing import Any

from ..schemas import compile_schema, schema_errors

EXAMPLE_USER = "user-123"
EXAMPLE_TIMESTAMP = "2025-01-31T12:00:00Z"
KEY_PLACEHOLDER = "<YOUR_TEST_API_KEY>"


@dataclass(frozen=True)
class Example:
    context: dict
    errors: list[dict]  # the schema's complaints about it, as ingest words them (empty: valid)


def example_context(schema: dict) -> Example:
    context = _value(schema)
    if not isinstance(context, dict):
        context = {}
    try:
        errors = schema_errors(compile_schema(schema), context, "transaction_context")
    except ValueError as exc:
        errors = [{"field": "", "code": "schema", "message": str(exc)}]
    return Example(context, errors)


def example_body(*, trigger_name: str, context: dict, external_user_id: str = EXAMPLE_USER):
    return {
        "trigger_name": trigger_name,
        "external_user_id": external_user_id,
        "transaction_context": context,
    }


def curl_command(*, url: str, body: dict) -> str:
    """The request as curl, the key a placeholder (Pilot never prints a key)."""
    return " \\\n  ".join(
        [
            f"curl -X POST {shlex.quote(url)}",
            f"-H {shlex.quote('x-api-key: ' + KEY_PLACEHOLDER)}",
            "-H 'Content-Type: application/json'",
            f"-d {shlex.quote(json.dumps(body, indent=2))}",
        ]
    )


def _value(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return None
    for keyword in ("const", "default"):
        if keyword in spec:
            return spec[keyword]
    if spec.get("examples"):
        return spec["examples"][0]
    if spec.get("enum"):
        return spec["enum"][0]
    kind = spec.get("type", "object" if "properties" in spec else None)
    if kind == "object":
        return {name: _value(sub) for name, sub in (spec.get("properties") or {}).items()}
    if kind in ("number", "integer"):
        return _number(spec, kind)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "string":
        return _string(spec)
    return None


def _number(spec: dict, kind: str) -> int | float:
    value = 25.0 if kind == "number" else 1
    if "minimum" in spec:
        value = max(value, spec["minimum"])
    if "maximum" in spec:
        value = min(value, spec["maximum"])
    return int(value) if kind == "integer" else value


def _string(spec: dict) -> str:
    if spec.get("format") == "date-time":
        return EXAMPLE_TIMESTAMP
    text = "example"
    if "pattern" in spec:
        text = _matching(spec["pattern"]) or text
    low, high = spec.get("minLength", 0), spec.get("maxLength")
    if len(text) < low:
        text += "x" * (low - len(text))
    return text[:high] if high is not None else text


def _matching(pattern: str) -> str | None:
    """A short string the pattern matches, for the plain patterns partners write
    (``^[A-Z]{3}$``, ``^ord-[0-9]+$``); None when Python cannot read it."""
    try:
        return "".join(_build(sre.parse(pattern)))
    except (re.error, ValueError, KeyError, IndexError, TypeError):
        return None


_CATEGORY = {
    sre.CATEGORY_DIGIT: "1",
    sre.CATEGORY_WORD: "a",
    sre.CATEGORY_SPACE: " ",
    sre.CATEGORY_NOT_DIGIT: "a",
    sre.CATEGORY_NOT_WORD: "-",
    sre.CATEGORY_NOT_SPACE: "a",
}


def _build(parsed) -> list[str]:
    out = []
    for op, arg in parsed:
        if op is sre.LITERAL:
            out.append(chr(arg))
        elif op is sre.ANY:
            out.append("a")
        elif op is sre.IN:
            out.append(_in(arg))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, _, sub = arg
            out.extend(_build(sub) * max(low, 1))
        elif op is sre.SUBPATTERN:
            out.extend(_build(arg[-1]))
        elif op is sre.BRANCH:
            out.extend(_build(arg[1][0]))
        elif op is sre.AT:
            continue
        else:
            raise ValueError(f"cannot build {op}")
    return out


def _in(items) -> str:
    if items and items[0][0] is sre.NEGATE:
        raise ValueError("negated class")
    op, arg = items[0]
    if op is sre.LITERAL:
        return chr(arg)
    if op is sre.RANGE:
        return chr(arg[0])
    if op is sre.CATEGORY:
        return _CATEGORY[arg]
    raise ValueError(f"cannot build {op}")

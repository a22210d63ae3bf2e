"""A trigger's context schema as rows an operator edits, and back: the field editor in Pilot.

Rows are plain strings and booleans, as a form posts them. ``rows_to_schema`` writes the JSON
Schema (or refuses the rows, with an error per row and field); ``schema_to_rows`` reads one
back, or refuses a schema that holds anything the rows cannot say (``NotExpressible``: Pilot
then opens it in raw JSON), so opening and saving in the editor never drops a keyword.
Round trip: rows -> schema -> rows is the identity for valid rows; properties keep the rows'
order, though PostgreSQL's jsonb stores object keys in its own order.

Nesting: a row named ``address.city`` is a field of the object row ``address``; one level
only (an object inside an object opens in raw JSON).
"""

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from .schemas import compile_schema

TYPES = ("string", "number", "integer", "boolean", "timestamp", "enum", "object")
NUMERIC = ("number", "integer")
# Campaign rules read a field as ``context.<name>`` (CEL): the name must be an identifier.
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


@dataclass(frozen=True)
class FieldRow:
    """One field as the editor shows it; bounds and enum values as typed (values one a line)."""

    name: str
    type: str
    required: bool = False
    description: str = ""
    values: str = ""  # enum
    minimum: str = ""  # number, integer
    maximum: str = ""
    min_length: str = ""  # string
    max_length: str = ""
    pattern: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


ROW_KEYS = tuple(field.name for field in fields(FieldRow))


class RowsInvalid(ValueError):
    """``errors``: {row index: {row field: message}}."""

    def __init__(self, errors: dict[int, dict[str, str]]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} field row(s) are not valid")


class NotExpressible(ValueError):
    """A schema the rows cannot express; the message says what, where."""


# rows -> schema ---------------------------------------------------------------------------


def rows_to_schema(rows: list[FieldRow]) -> dict:
    """The context schema the rows describe; raises RowsInvalid naming each bad row field."""
    errors: dict[int, dict[str, str]] = {}
    properties: dict[str, dict] = {}
    required: list[str] = []
    objects: dict[str, dict] = {}  # object rows' schemas, by name
    seen: set[str] = set()
    for index, row in enumerate(rows):
        row_errors: dict[str, str] = {}
        parent, _, name = row.name.strip().rpartition(".")
        if row.name.strip() in seen:
            row_errors["name"] = f"Another field is named {row.name.strip()}"
        seen.add(row.name.strip())
        spec = _field_schema(row, row_errors)
        if "name" not in row_errors:
            _check_name(row, parent, name, row_errors)
        if parent and not row_errors:
            if parent not in objects:
                row_errors["name"] = f"No object field named {parent} above this row"
            elif row.type == "object":
                row_errors["type"] = "Only one level of nesting (deeper: use raw JSON)"
        target = objects[parent] if parent and parent in objects else None
        siblings = target["properties"] if target is not None else properties
        if row_errors:
            errors[index] = row_errors
            continue
        siblings[name] = spec
        if row.type == "object":
            objects[name] = spec
        if row.required:
            if target is not None:
                target.setdefault("required", []).append(name)
            else:
                required.append(name)
    if errors:
        raise RowsInvalid(errors)
    schema: dict[str, Any] = {"type": "object"}
    if properties:
        schema["properties"] = properties
    if required:
        schema["required"] = required
    return schema


def _check_name(row: FieldRow, parent: str, name: str, errors: dict[str, str]) -> None:
    if not row.name.strip():
        errors["name"] = "A field needs a name"
    elif not NAME.match(name) or (parent and not NAME.match(parent)):
        errors["name"] = (
            "Letters, digits and _ only, not starting with a digit (rules read it as "
            "context.<name>); one dot for a field of an object"
        )


def _field_schema(row: FieldRow, errors: dict[str, str]) -> dict:
    if row.type not in TYPES:
        errors["type"] = f"One of: {', '.join(TYPES)}"
        return {}
    spec: dict[str, Any] = {
        "timestamp": {"type": "string", "format": "date-time"},
        "enum": {"type": "string"},
    }.get(row.type, {"type": row.type})
    if row.description.strip():
        spec["description"] = row.description.strip()
    _no_foreign_bounds(row, errors)
    if row.type == "enum":
        values = [value.strip() for value in row.values.splitlines() if value.strip()]
        if not values:
            errors["values"] = "An enum needs at least one value (one a line)"
        elif len(set(values)) != len(values):
            errors["values"] = "Each value once"
        spec["enum"] = values
    elif row.type in NUMERIC:
        _bounds(row, spec, errors, ("minimum", "maximum"), _number, row.type)
    elif row.type == "string":
        _bounds(row, spec, errors, ("min_length", "max_length"), _length, "length")
        if row.pattern:
            error = _pattern_error(row.pattern)
            if error:
                errors["pattern"] = error
            else:
                spec["pattern"] = row.pattern
    elif row.type == "object":
        spec["properties"] = {}
    return spec


_BOUNDS_OF = {
    "values": ("enum",),
    "minimum": NUMERIC,
    "maximum": NUMERIC,
    "min_length": ("string",),
    "max_length": ("string",),
    "pattern": ("string",),
}
_KEYWORDS = {"min_length": "minLength", "max_length": "maxLength"}


def _no_foreign_bounds(row: FieldRow, errors: dict[str, str]) -> None:
    for key, types in _BOUNDS_OF.items():
        if getattr(row, key).strip() and row.type not in types:
            errors[key] = f"Only for a field of type {' or '.join(types)}"


def _bounds(row: FieldRow, spec: dict, errors: dict, keys: tuple, parse, kind: str) -> None:
    parsed = {}
    for key in keys:
        text = getattr(row, key).strip()
        if not text:
            continue
        try:
            parsed[key] = parse(text, kind)
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        spec[_KEYWORDS.get(key, key)] = parsed[key]
    low, high = (parsed.get(key) for key in keys)
    if low is not None and high is not None and low > high:
        errors[keys[1]] = f"Must be at least the {keys[0].replace('_', ' ')} ({low})"


def _number(text: str, kind: str) -> int | float:
    if not _NUMBER.match(text):
        raise ValueError("A number, e.g. 10 or 2.5")
    value = int(text) if text.lstrip("-").isdigit() else float(text)
    if kind == "integer" and not float(value).is_integer():
        raise ValueError("A whole number (the field is an integer)")
    return value


def _length(text: str, kind: str) -> int:
    if not text.isdigit():
        raise ValueError("A whole number of characters, 0 or more")
    return int(text)


def _pattern_error(pattern: str) -> str | None:
    """Why the validator would refuse the regular expression, in its words; None if it takes it."""
    try:
        compile_schema({"type": "string", "pattern": pattern})
    except ValueError as exc:
        return f"Not a valid regular expression: {exc}"
    return None


# schema -> rows ---------------------------------------------------------------------------

_SCALAR_KEYS = {
    "string": {"type", "description", "minLength", "maxLength", "pattern"},
    "number": {"type", "description", "minimum", "maximum"},
    "integer": {"type", "description", "minimum", "maximum"},
    "boolean": {"type", "description"},
    "timestamp": {"type", "description", "format"},
    "enum": {"type", "description", "enum"},
    "object": {"type", "description", "properties", "required"},
}


def schema_to_rows(schema: Any) -> list[FieldRow]:
    """The rows of a schema the editor can express; raises NotExpressible otherwise."""
    if not isinstance(schema, dict):
        raise NotExpressible("The schema is not a JSON object")
    return _object_rows(schema, "", "The schema")


def _object_rows(schema: dict, prefix: str, where: str) -> list[FieldRow]:
    allowed = {"type", "properties", "required"} | ({"description"} if prefix else set())
    _only(schema, allowed, where)
    if schema.get("type", "object" if not prefix else None) != "object":
        raise NotExpressible(f"{where}: not an object")
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        raise NotExpressible(f"{where}: properties or required is not of the usual shape")
    if len(set(required)) != len(required) or not set(required) <= set(properties):
        raise NotExpressible(f"{where}: requires a field it does not describe")
    rows = []
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if not NAME.match(name):
            raise NotExpressible(f"The field {path!r}: a name rules cannot read as context.<name>")
        row = _row(spec, path, name in required)
        rows.append(row)
        if row.type == "object":
            if prefix:
                raise NotExpressible(f"The field {path}: an object inside an object")
            rows.extend(_object_rows(spec, f"{path}.", f"The field {path}"))
    return rows


def _row(spec: Any, path: str, required: bool) -> FieldRow:
    where = f"The field {path}"
    if not isinstance(spec, dict):
        raise NotExpressible(f"{where}: not a JSON object")
    kind = _kind(spec, where)
    _only(spec, _SCALAR_KEYS[kind], where)
    description = spec.get("description", "")
    if not isinstance(description, str) or description != description.strip():
        raise NotExpressible(f"{where}: a description the editor would change")
    row = {"name": path, "type": kind, "required": required, "description": description}
    if kind == "enum":
        values = spec["enum"]
        if not values or not all(_plain_line(value) for value in values):
            raise NotExpressible(f"{where}: enum values other than distinct one-line strings")
        if len(set(values)) != len(values):
            raise NotExpressible(f"{where}: repeated enum values")
        row["values"] = "\n".join(values)
    for keyword, key in (("minimum", "minimum"), ("maximum", "maximum")):
        if keyword in spec:
            row[key] = _number_text(spec[keyword], kind, where)
    for keyword, key in (("minLength", "min_length"), ("maxLength", "max_length")):
        if keyword in spec:
            value = spec[keyword]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise NotExpressible(f"{where}: {keyword} is not a whole number")
            row[key] = str(value)
    if "pattern" in spec:
        if not isinstance(spec["pattern"], str):
            raise NotExpressible(f"{where}: pattern is not a string")
        row["pattern"] = spec["pattern"]
    parsed = FieldRow(**row)
    if kind != "object":
        try:  # bounds the editor would refuse (min above max) stay in raw JSON
            rows_to_schema([FieldRow(**{**row, "name": "x"})])
        except RowsInvalid as exc:
            (errors,) = exc.errors.values()
            raise NotExpressible(f"{where}: {'; '.join(errors.values())}") from exc
    return parsed


def _kind(spec: dict, where: str) -> str:
    json_type = spec.get("type")
    if json_type == "string" and "format" in spec:
        if spec["format"] != "date-time":
            raise NotExpressible(f"{where}: format {spec['format']!r} (only date-time)")
        return "timestamp"
    if json_type == "string" and "enum" in spec:
        return "enum"
    if json_type in ("string", "number", "integer", "boolean", "object"):
        return json_type
    raise NotExpressible(f"{where}: type {json_type!r} is not one the editor offers")


def _only(spec: dict, allowed: set, where: str) -> None:
    extra = sorted(set(spec) - allowed)
    if extra:
        raise NotExpressible(f"{where}: {', '.join(extra)} (not in the field editor)")


def _plain_line(value: Any) -> bool:
    return isinstance(value, str) and value == value.strip() and value and "\n" not in value


def _number_text(value: Any, kind: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NotExpressible(f"{where}: a bound that is not a number")
    text = repr(value)
    if not _NUMBER.match(text) or _number(text, "number") != value:
        raise NotExpressible(f"{where}: the bound {text} as typed would change")
    return text

"""The configuration document: its format (a JSON Schema, version ``FORMAT_VERSION``), reading
it from YAML or JSON with errors a person can act on, and writing it in a stable order.

Values are kept in one canonical form, the one campaign versions keep
(``campaigns.versions``): decimals as strings without trailing zeros, times in UTC. So a
document's ``budget: 500`` and the database's ``500.000000`` are the same value, and an
exported document applied unchanged plans nothing.
"""

import copy
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal, InvalidOperation

import jsonschema_rs
import yaml

from campaigns.models import Campaign
from campaigns.versions import CONFIGURATION
from config import timestamps
from config.errors import ApplicationError, ErrorCode, field_error
from rewards.webhooks.models import WebhookEndpoint, WebhookEventType
from triggers.models import Trigger
from triggers.schemas import schema_errors

FORMAT_VERSION = 1
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
# At most so many objects of each kind: a plan or apply locks every one of the partnership's
# rows until it ends, and writes each (a Pilot pause waits behind it).
MAX_OBJECTS = {"triggers": 500, "campaigns": 1000, "webhooks": 100}

SETTINGS = (
    "reward_unit",
    "reward_decimal_places",
    "time_zone",
    "max_event_lateness_days",
    "allowed_cidrs",
    "allowed_origins",
    "user_attribute_schema",
)
TRIGGER_FIELDS = ("name", "description", "status", "client_sendable", "context_schema")
# A campaign's fields are those its versions keep, its trigger named (not numbered).
CAMPAIGN_FIELDS = ("slug", *(f for f in CONFIGURATION if f != "slug"))
CAMPAIGN_FIELDS = tuple("trigger" if f == "trigger_id" else f for f in CAMPAIGN_FIELDS)
WEBHOOK_FIELDS = ("url", "modes", "events", "active")

DECIMALS = ("reward_value", "reward_min", "reward_max", "budget", "max_amount_per_user")
INTEGERS = ("max_rewards", "max_rewards_per_user", "max_rewards_per_user_per_period")
TIMES = ("starts_at", "ends_at")

_DECIMAL = {
    "type": ["string", "number", "null"],
    "pattern": r"^-?[0-9]{1,24}(\.[0-9]{1,24})?$",
    "maxLength": 50,
}
_TIME = {"type": ["string", "null"], "pattern": timestamps.PATTERN}
_TEXT = {"type": "string"}


def _object(properties: dict, required: tuple = ()) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_CAMPAIGN = {
    "slug": {"type": "string", "minLength": 1},
    "name": _TEXT,
    "description": _TEXT,
    "trigger": {"type": "string", "minLength": 1},
    **dict.fromkeys(TIMES, _TIME),
    "priority": {"type": "integer"},
    "exclusive": {"type": "boolean"},
    "condition": _TEXT,
    "facts": {"type": "array", "items": {"type": "object"}, "maxItems": 20},
    "reward_type": {"enum": list(Campaign.RewardType.values)},
    **dict.fromkeys(DECIMALS, _DECIMAL),
    "reward_field": _TEXT,
    "reward_expression": _TEXT,
    "rounding": {"enum": list(Campaign.Rounding.values)},
    **{field: {"type": ["integer", "null"], "minimum": 0} for field in INTEGERS},
    "period": {"enum": ["", *Campaign.Period.values]},
}

SCHEMA = _object(
    {
        "format_version": {"const": FORMAT_VERSION},
        "settings": _object(
            {
                "reward_unit": _TEXT,
                "reward_decimal_places": {"type": "integer"},
                "time_zone": _TEXT,
                "max_event_lateness_days": {"type": ["integer", "null"]},
                "allowed_cidrs": {"type": "array", "items": _TEXT},
                "allowed_origins": {"type": "array", "items": _TEXT},
                "user_attribute_schema": {"type": "object"},
            }
        ),
        "triggers": {
            "type": "array",
            "maxItems": MAX_OBJECTS["triggers"],
            "items": _object(
                {
                    "name": {"type": "string", "minLength": 1},
                    "description": _TEXT,
                    "status": {"enum": list(Trigger.Status.values)},
                    "client_sendable": {"type": "boolean"},
                    "context_schema": {"type": "object"},
                },
                required=("name",),
            ),
        },
        "campaigns": {
            "type": "array",
            "maxItems": MAX_OBJECTS["campaigns"],
            "items": _object(_CAMPAIGN, required=("slug", "name", "trigger")),
        },
        "webhooks": {
            "type": "array",
            "maxItems": MAX_OBJECTS["webhooks"],
            "items": _object(
                {
                    "url": {"type": "string", "minLength": 1},
                    # Required: an endpoint never hears live events by default.
                    "modes": {"enum": list(WebhookEndpoint.Modes.values)},
                    "events": {
                        "type": "array",
                        "items": {"enum": list(WebhookEventType.values)},
                        "uniqueItems": True,
                    },
                    "active": {"type": "boolean"},
                },
                required=("url", "modes", "events"),
            ),
        },
    },
    # Every section: a section left out would otherwise read as "delete all of them".
    required=("format_version", "settings", "triggers", "campaigns", "webhooks"),
)
_VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA)

TRIGGER_DEFAULTS = {
    "description": "",
    "status": Trigger.Status.ACTIVE,
    "client_sendable": False,
    "context_schema": None,
}
CAMPAIGN_DEFAULTS = {
    "description": "",
    "starts_at": None,
    "ends_at": None,
    "priority": 0,
    "exclusive": False,
    "condition": "",
    "facts": [],
    "reward_type": Campaign.RewardType.FIXED,
    "reward_value": None,
    "reward_field": "",
    "reward_expression": "",
    "reward_min": None,
    "reward_max": None,
    "rounding": Campaign.Rounding.HALF_UP,
    "budget": None,
    "max_rewards": None,
    "max_rewards_per_user": None,
    "max_rewards_per_user_per_period": None,
    "period": "",
    "max_amount_per_user": None,
}
WEBHOOK_DEFAULTS = {"active": True}


@dataclass(frozen=True)
class Document:
    """A valid document, canonical: triggers by name, campaigns by slug, webhook endpoints as
    listed (identified by URL and modes), each with every field."""

    settings: dict
    triggers: dict[str, dict]
    campaigns: dict[str, dict]
    webhooks: list[dict]

    def as_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "settings": self.settings,
            "triggers": [self.triggers[name] for name in sorted(self.triggers)],
            "campaigns": [self.campaigns[slug] for slug in sorted(self.campaigns)],
            "webhooks": sorted(self.webhooks, key=webhook_order),
        }


def webhook_key(endpoint: dict) -> str:
    """How a webhook endpoint is named in a plan and its errors: its URL and modes (a live
    endpoint and a test one at the same URL are two objects, never one changed into the other)."""
    return f"{endpoint['url']} ({endpoint['modes']})"


def webhook_order(endpoint: dict) -> tuple:
    return (endpoint["url"], endpoint["modes"], endpoint["events"], not endpoint["active"])


# --- reading ----------------------------------------------------------------------------------


def _malformed(message: str) -> ApplicationError:
    return ApplicationError(400, ErrorCode.MALFORMED_DOCUMENT, message)


# Numbers as JSON writes them, in YAML too (YAML 1.2's JSON schema): YAML 1.1 would read
# ``010`` as 8, ``1:30`` as 90 and ``0x10`` as 16; those stay strings (the schema refuses them
# where a number belongs). Fractions are read as Decimals, never through binary floats, so
# ``budget: 123456789012.345678`` keeps its last digit.
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+([eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)")
_NOT_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
# Python refuses to read longer integers (``sys.int_info.default_max_str_digits``).
MAX_INTEGER_DIGITS = 4300
# Decimals beyond this exponent are no amount (and no float); refused before anything writes
# them out in full.
MAX_EXPONENT = 300


def _integer(text: str) -> int:
    """A JSON or YAML integer; longer ones than Python reads refused as malformed."""
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _malformed(f"A number has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


class _Loader(yaml.SafeLoader):
    """YAML as data only: no anchors or aliases (a few lines can expand to gigabytes), no
    duplicate keys (YAML keeps the last one silently), only string keys, numbers as JSON writes
    them (``_INT``, ``_FLOAT``) and times left as the strings they are (the schema checks them,
    as in JSON)."""

    def construct_yaml_int(self, node):
        value = self.construct_scalar(node)
        if not _INT.fullmatch(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{value!r} is not an integer as JSON writes it", node.start_mark
            )
        return _integer(value)

    def construct_yaml_float(self, node):
        value = self.construct_scalar(node)
        if _NOT_FINITE.fullmatch(value):
            return float(value.lower().lstrip("+").replace(".", ""))  # refused in _json_only
        if not _FLOAT.fullmatch(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{value!r} is not a number as JSON writes it", node.start_mark
            )
        return Decimal(value)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                None, None, "anchors and aliases are not supported", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(None, None, "keys must be strings", key_node.start_mark)
            if key in seen:
                raise yaml.MarkedYAMLError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_REPLACED = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(f"^{_INT.pattern}$"), "-0123456789"
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(f"^({_FLOAT.pattern}|{_NOT_FINITE.pattern})$"),
    "-+.0123456789",
)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


def _no_duplicates(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise _malformed(f"Not valid JSON: duplicate key {duplicate!r}")
    return dict(pairs)


MAX_DEPTH = 64


def _json_only(value, path: str = "", depth: int = 0) -> None:
    """Refuses what YAML can say and JSON cannot (binary, sets, infinities), the NUL character
    (PostgreSQL stores it neither in text nor in JSON) and nesting deeper than ``MAX_DEPTH``."""
    where = path or "document"
    if depth > MAX_DEPTH:
        raise _malformed(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str) and "\x00" in value:
        raise _malformed(f"{where}: the NUL character (\\u0000) is not allowed")
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate, from a JSON escape
            raise _malformed(f"{where}: not valid Unicode text") from exc
    if isinstance(value, dict):
        for key, item in value.items():
            _json_only(key, path, depth)
            _json_only(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_only(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise _malformed(f"{where}: not a finite number")
    elif isinstance(value, Decimal) and not (
        value.is_finite() and -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT
    ):
        raise _malformed(f"{where}: not a number this document can hold")
    elif not isinstance(value, str | int | float | Decimal | bool | type(None)):
        raise _malformed(f"{where}: {type(value).__name__} is not a JSON value")


def document_load(text: str | bytes) -> object:
    """The data of a YAML or JSON text (JSON: it starts with ``{``); raises 400
    ``malformed_document`` with the line and column of a syntax error."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise _malformed(f"The document is larger than {MAX_DOCUMENT_BYTES} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed("The document is not UTF-8 text") from exc
    try:
        data = _parsed(text)
    except RecursionError as exc:
        raise _malformed(f"The document is nested deeper than {MAX_DEPTH} levels") from exc
    _json_only(data)
    return data


def _parsed(text: str) -> object:
    if text.lstrip().startswith("{"):
        try:
            return json.loads(
                text, object_pairs_hook=_no_duplicates, parse_float=Decimal, parse_int=_integer
            )
        except json.JSONDecodeError as exc:
            raise _malformed(
                f"Not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from exc
    else:
        try:
            return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader, stricter
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise _malformed(f"Not valid YAML: {where}{exc.problem or exc.context}") from exc
        except yaml.YAMLError as exc:
            raise _malformed(f"Not valid YAML: {exc}") from exc


# --- validating -------------------------------------------------------------------------------


def _named(errors: list[dict], data: dict) -> list[dict]:
    """``campaigns[2].budget`` -> ``campaigns[cashback].budget`` where the object has a name."""
    keys = {"triggers": "name", "campaigns": "slug", "webhooks": None}
    named = []
    for error in errors:
        field = error["field"]
        for section, key in keys.items():
            prefix = f"{section}["
            if not field.startswith(prefix):
                continue
            index, _, rest = field[len(prefix) :].partition("]")
            item = data[section][int(index)] if index.isdigit() else None
            name = None
            if isinstance(item, dict):
                name = item.get(key) if key else _webhook_name(item)
            if isinstance(name, str) and name:
                field = f"{section}[{name}]{rest}"
        named.append({**error, "field": field})
    return named


def _webhook_name(item: dict) -> str | None:
    if isinstance(item.get("url"), str) and isinstance(item.get("modes"), str):
        return webhook_key(item)
    return None


def invalid(errors: list[dict]) -> ApplicationError:
    count = len(errors)
    return ApplicationError(
        422,
        ErrorCode.VALIDATION_ERROR,
        f"The configuration is not valid ({count} problem{'s' if count != 1 else ''}): "
        + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        + ("; ..." if count > 5 else ""),
        errors=errors,
    )


def canonical_decimal(value) -> str | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)  # the model's validation names it
    return format(number.normalize(), "f")


class TimeOutOfRange(ValueError):
    """A time whose UTC form is beyond Python's calendar (``9999-12-31T23:59:59-01:00``)."""


def canonical_time(value: str | None) -> str | None:
    parsed = timestamps.parse(value) if value is not None else None
    if parsed is None:
        return value  # null, or a day its month does not have: the model's validation names it
    try:
        return parsed.astimezone(UTC).isoformat()
    except OverflowError as exc:
        raise TimeOutOfRange(value) from exc


def _floats(value):
    """``value`` with its Decimals as floats: what the schema validates, and what numbers are
    outside a campaign's amounts (a fact's window, a JSON Schema's ``minimum``)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats(item) for item in value]
    return value


def _canonical_campaign(item: dict, errors: list[dict]) -> dict:
    """The campaign with every field, canonical; its amounts from their Decimals (never a
    float's digits). A time out of range is added to ``errors``."""
    given = {field: value if field in DECIMALS else _floats(value) for field, value in item.items()}
    campaign = {**copy.deepcopy(CAMPAIGN_DEFAULTS), **given}
    for field in DECIMALS:
        campaign[field] = canonical_decimal(campaign[field])
    for field in TIMES:
        try:
            campaign[field] = canonical_time(campaign[field])
        except TimeOutOfRange:
            errors.append(
                field_error(
                    f"campaigns[{campaign['slug']}].{field}",
                    "invalid",
                    "Out of range: a date from 2000 to 2200",
                )
            )
    return {field: campaign[field] for field in CAMPAIGN_FIELDS}


def _duplicates(items: list[dict], section: str, key: str) -> list[dict]:
    seen, errors = set(), []
    for item in items:
        if item[key] in seen:
            errors.append(
                field_error(
                    f"{section}[{item[key]}].{key}",
                    "duplicate",
                    f"Another of the {section} is also named {item[key]!r}",
                )
            )
        seen.add(item[key])
    return errors


def _references(triggers: dict, campaigns: dict) -> list[dict]:
    """A campaign's trigger, and the triggers its facts read, must be in the document: what
    the document leaves out is deleted or archived."""
    errors = []
    for slug, campaign in campaigns.items():
        if campaign["trigger"] not in triggers:
            errors.append(
                field_error(
                    f"campaigns[{slug}].trigger",
                    "unknown_trigger",
                    f"No trigger {campaign['trigger']!r} in the document's triggers",
                )
            )
        for index, fact in enumerate(campaign["facts"]):
            named = fact.get("trigger")
            if isinstance(named, str) and named not in triggers:
                errors.append(
                    field_error(
                        f"campaigns[{slug}].facts[{index}].trigger",
                        "unknown_trigger",
                        f"No trigger {named!r} in the document's triggers",
                    )
                )
    return errors


def document_validate(data: object) -> Document:
    """The document ``data`` describes, canonical; raises 422 ``validation_error`` with one
    entry per problem (``field``: ``campaigns[cashback].budget``)."""
    raw, data = data, _floats(data)
    errors = [
        {**error, "field": error["field"] or "document"}
        for error in schema_errors(_VALIDATOR, data, "")
    ]
    if errors:
        raise invalid(_named(errors, data) if isinstance(data, dict) else errors)
    triggers = [{**TRIGGER_DEFAULTS, **item} for item in data["triggers"]]
    for trigger in triggers:
        if trigger["context_schema"] is None:
            trigger["context_schema"] = {"type": "object"}
    errors = []
    campaigns = [_canonical_campaign(item, errors) for item in raw["campaigns"]]
    webhooks = [{**WEBHOOK_DEFAULTS, **item} for item in data["webhooks"]]
    for webhook in webhooks:
        webhook["events"] = sorted(webhook["events"])
    errors += _duplicates(triggers, "triggers", "name") + _duplicates(
        campaigns, "campaigns", "slug"
    )
    by_name = {t["name"]: {f: t[f] for f in TRIGGER_FIELDS} for t in triggers}
    by_slug = {c["slug"]: c for c in campaigns}
    errors += _references(by_name, by_slug)
    if errors:
        raise invalid(errors)
    return Document(
        settings=dict(data["settings"]),
        triggers=by_name,
        campaigns=by_slug,
        webhooks=[{f: w[f] for f in WEBHOOK_FIELDS} for w in webhooks],
    )


def document_parse(text: str | bytes) -> Document:
    return document_validate(document_load(text))


# --- writing ----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style; long texts (schemas' descriptions, rules) as they are."""


def _text(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def document_dump(document: dict, fmt: str = "yaml") -> str:
    """The document as text, in its stable order (keys as the format lists them)."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )

"""A common subset of checked CEL run as Python closures, for replays that judge many events:
comparisons, ``&&``, ``||``, ``!``, ``?:``, double and int arithmetic and ``in`` a list of
literals, over the context's and declared user attributes' fields, ``user.<key>`` of the user
map, facts, ``event.trigger`` and ``event.mode``.

It answers only where its answer is certainly CEL's: it reads the expression CEL checked (its
overloads and types, ``Expression.serialize``), and at run time any value that is absent, of
another type than checked, or an operation CEL could fail or round differently (an int out of
64 bits, a division by zero) raises ``Unsure``, and the caller evaluates that event with CEL
itself. An expression using anything else is not compiled here at all (``native_compile`` gives
None). ``tests/campaigns/test_native.py`` holds it to CEL on generated expressions and values.
"""

import operator
import struct
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class Unsure(Exception):
    """This event needs CEL itself (an absent variable, an unexpected type, an error)."""


class NativeRules(NamedTuple):
    """A campaign's condition (None: always) and reward expression (None: not an expression
    reward) as closures."""

    condition: "Native | None"
    reward: "Native | None"


class Scope(NamedTuple):
    """What an expression reads of one event: the variables ``campaigns.rules.event_data``
    binds (so a value is read as CEL is given it), and the event's facts by ``FactSpec``."""

    data: Mapping[str, Any]
    facts: Mapping[Any, Any]


Native = Callable[[Scope], Any]

_INT64 = (-(2**63), 2**63 - 1)
# Checked types (cel.expr.Type.PrimitiveType) and the Python type CEL gives for each.
_BOOL, _INT, _DOUBLE, _STRING = 1, 2, 4, 5
_PYTHON = {_BOOL: bool, _INT: int, _DOUBLE: float, _STRING: str}
_DYN = "dyn"


def native_compile(expression: Any, facts: Mapping[str, Any]) -> Native | None:
    """The expression (compiled by ``RuleEnvironment.compile``) as a Python closure over a
    ``Scope``, or None if it uses something this subset leaves to CEL. ``facts``: the key in
    ``Scope.facts`` of each fact the expression may name. The closure's ``reads`` are the
    names of ``Scope.data`` it may read (a replay binds only those)."""
    try:
        checked = _message(_message(expression.serialize())[2][0])
        references = {}
        for entry in checked.get(2, ()):
            entry = _message(entry)
            references[_varint_of(entry[1][0])] = _message(entry[2][0])
        types = {}
        for entry in checked.get(3, ()):
            entry = _message(entry)
            types[_varint_of(entry[1][0])] = _type(_message(entry[2][0]))
        builder = _Builder(references, types, facts)
        native = builder.build(_message(checked[4][0]))
    except _Unsupported:
        return None
    native.reads = frozenset(builder.reads)  # type: ignore[attr-defined]
    return native


class _Unsupported(Exception):
    pass


class _Builder:
    def __init__(self, references, types, facts) -> None:
        self.references, self.types, self.facts = references, types, facts
        self.reads: set[str] = set()  # the names of Scope.data read

    def build(self, expr: dict) -> Native:
        expr_id = _varint_of(expr[2][0]) if 2 in expr else 0
        kind = self.types.get(expr_id)
        if 3 in expr:
            return _constant(_message(expr[3][0]))
        if 4 in expr:
            return self._variable(self._name(expr_id), kind)
        if 5 in expr:
            return self._select(_message(expr[5][0]), kind)
        if 6 in expr:
            return self._call(expr_id, _message(expr[6][0]), kind)
        raise _Unsupported

    def _name(self, expr_id: int) -> str:
        reference = self.references.get(expr_id)
        if reference is None or 1 not in reference:
            raise _Unsupported
        return reference[1][0].decode()

    def _variable(self, name: str, kind) -> Native:
        """A variable: ``context.<field>``, ``user.<declared>``, ``event.trigger``,
        ``event.mode`` as ``event_data`` binds them, or a fact; unbound: Unsure (CEL's
        message)."""
        if name.startswith("facts."):
            source, key = "facts", self.facts.get(name.removeprefix("facts."))
            if key is None:
                raise _Unsupported
        else:
            source, key = "data", name
            self.reads.add(name)
        expected = _PYTHON.get(kind)
        if expected is not None and expected is not int:  # the type check is the bound check

            def simple(scope: Scope):
                value = getattr(scope, source).get(key)
                if type(value) is not expected:
                    raise Unsure
                return value

            return simple
        check = _checker(kind)

        def variable(scope: Scope):
            value = getattr(scope, source).get(key)
            if value is None:
                raise Unsure
            return check(value)

        return variable

    def _select(self, select: dict, kind) -> Native:
        """``user.<key>`` of the user map (the partnership declares no such attribute), or
        ``has(user.<key>)``."""
        operand = _message(select[1][0])
        if 4 not in operand or self._name(_varint_of(operand[2][0])) != "user":
            raise _Unsupported
        key = select[2][0].decode()
        self.reads.add("user")
        if select.get(3) and _varint_of(select[3][0]):  # has(user.key)

            def has(scope: Scope):
                user = scope.data["user"]
                _convertible(user)
                return key in user

            return has
        check = _checker(kind)

        def attribute(scope: Scope):
            user = scope.data["user"]
            _convertible(user)
            value = user.get(key)
            if value is None:  # absent (or null): CEL's message
                raise Unsure
            return check(value)

        return attribute

    def _call(self, expr_id: int, call: dict, kind) -> Native:
        reference = self.references.get(expr_id) or {}
        overloads = [o.decode() for o in reference.get(3, ())]
        if len(overloads) != 1 or 1 in call:  # a member call (x.f()) or an unresolved one
            raise _Unsupported
        overload = overloads[0]
        args = [_message(arg) for arg in call.get(3, ())]
        if overload == "in_list":
            return self._in_list(args)
        operands = [self.build(arg) for arg in args]
        make = _CALLS.get(overload)
        if make is None:
            raise _Unsupported
        return make(*operands)

    def _in_list(self, args: list[dict]) -> Native:
        value, listed = args
        if 7 not in listed:
            raise _Unsupported
        elements = [_message(e) for e in _message(listed[7][0]).get(1, ())]
        if not elements or any(3 not in e for e in elements):
            raise _Unsupported
        constants = [_constant(_message(e[3][0]))(None) for e in elements]
        kinds = {type(c) for c in constants}
        if len(kinds) != 1 or kinds == {float}:  # CEL's in compares numbers across types
            raise _Unsupported
        (kind,) = kinds
        member, allowed = self.build(value), tuple(constants)

        def in_list(scope: Scope):
            found = member(scope)
            if type(found) is not kind:
                raise Unsure
            return found in allowed

        return in_list


def _convertible(user) -> None:
    """CEL converts the whole user map when a rule reads it, and fails on a value it cannot
    hold (an int past 64 bits, anywhere in it): Unsure then."""
    if type(user) is not dict or not all(_holds(value) for value in user.values()):
        raise Unsure


def _holds(value) -> bool:
    kind = type(value)
    if kind is str or kind is float or kind is bool or value is None:
        return True
    if kind is int:
        return _INT64[0] <= value <= _INT64[1]
    if kind is list:
        return all(_holds(item) for item in value)
    if kind is dict:
        return all(type(key) is str and _holds(item) for key, item in value.items())
    return False


def _checker(kind) -> Callable[[Any], Any]:
    """The value as CEL would hold it for the checked type, or Unsure."""
    if kind == _DYN:
        return _plain
    expected = _PYTHON.get(kind)
    if expected is None:
        raise _Unsupported

    def check(value):
        if type(value) is not expected or (expected is int and not _INT64[0] <= value <= _INT64[1]):
            raise Unsure
        return value

    return check


def _plain(value):
    kind = type(value)
    if kind is str or kind is bool or kind is float:
        return value
    if kind is int and _INT64[0] <= value <= _INT64[1]:
        return value
    raise Unsure


def _constant(constant: dict) -> Native:
    if 2 in constant:
        value: Any = bool(_varint_of(constant[2][0]))
    elif 3 in constant:
        value = _signed(_varint_of(constant[3][0]))
    elif 5 in constant:
        (value,) = struct.unpack("<d", constant[5][0])
    elif 6 in constant:
        value = constant[6][0].decode()
    else:
        raise _Unsupported

    def constant_value(scope: Scope):
        return value

    constant_value.constant = value  # type: ignore[attr-defined]  # read by _compare
    return constant_value


def _logical(decisive: bool) -> Callable[[Native, Native], Native]:
    """``&&`` (False decides) or ``||`` (True decides); any other operand: Unsure, since CEL
    would then look at the other side for an answer that absorbs an error."""

    def make(left: Native, right: Native) -> Native:
        def combined(scope: Scope):
            value = left(scope)
            if value is decisive:
                return value
            if type(value) is not bool:
                raise Unsure
            value = right(scope)
            if type(value) is not bool:
                raise Unsure
            return value

        return combined

    return make


def _not(operand: Native) -> Native:
    def negated(scope: Scope):
        value = operand(scope)
        if type(value) is not bool:
            raise Unsure
        return not value

    return negated


def _conditional(test: Native, then: Native, otherwise: Native) -> Native:
    def chosen(scope: Scope):
        value = test(scope)
        if value is True:
            return then(scope)
        if value is False:
            return otherwise(scope)
        raise Unsure

    return chosen


def _compare(compare: Callable[[Any, Any], bool], kind: type | None = None):
    """``==``, ``<``, ...: both sides of one type (``kind``, or any the same for equality)."""

    def make(left: Native, right: Native) -> Native:
        if hasattr(right, "constant") and kind in (None, type(right.constant)):
            constant, expected = right.constant, type(right.constant)

            def with_constant(scope: Scope):  # the common shape: a variable against a literal
                value = left(scope)
                if type(value) is not expected:
                    raise Unsure
                return compare(value, constant)

            return with_constant

        def compared(scope: Scope):
            a, b = left(scope), right(scope)
            if type(a) is not type(b) or (kind is not None and type(a) is not kind):
                raise Unsure
            return compare(a, b)

        return compared

    return make


def _double(operate: Callable[[float, float], float]) -> Callable[[Native, Native], Native]:
    def make(left: Native, right: Native) -> Native:
        def operated(scope: Scope):
            a, b = left(scope), right(scope)
            if type(a) is not float or type(b) is not float:
                raise Unsure
            try:
                return operate(a, b)
            except (ZeroDivisionError, OverflowError) as exc:
                raise Unsure from exc

        return operated

    return make


def _int(operate: Callable[[int, int], int]) -> Callable[[Native, Native], Native]:
    def make(left: Native, right: Native) -> Native:
        def operated(scope: Scope):
            a, b = left(scope), right(scope)
            if type(a) is not int or type(b) is not int:
                raise Unsure
            value = operate(a, b)
            if not _INT64[0] <= value <= _INT64[1]:  # CEL: an overflow error
                raise Unsure
            return value

        return operated

    return make


def _negate(kind: type) -> Callable[[Native], Native]:
    def make(operand: Native) -> Native:
        def negated(scope: Scope):
            value = operand(scope)
            if type(value) is not kind or (kind is int and value == _INT64[0]):
                raise Unsure
            return -value

        return negated

    return make


_CALLS: dict[str, Callable[..., Native]] = {
    "logical_and": _logical(False),
    "logical_or": _logical(True),
    "logical_not": _not,
    "conditional": _conditional,
    "equals": _compare(operator.eq),
    "not_equals": _compare(operator.ne),
    "add_double": _double(lambda a, b: a + b),
    "subtract_double": _double(lambda a, b: a - b),
    "multiply_double": _double(lambda a, b: a * b),
    "divide_double": _double(lambda a, b: a / b),
    "add_int64": _int(lambda a, b: a + b),
    "subtract_int64": _int(lambda a, b: a - b),
    "multiply_int64": _int(lambda a, b: a * b),
    "negate_double": _negate(float),
    "negate_int64": _negate(int),
}
for _suffix, _kind in (("double", float), ("int64", int)):
    _CALLS |= {
        f"less_{_suffix}": _compare(operator.lt, _kind),
        f"less_equals_{_suffix}": _compare(operator.le, _kind),
        f"greater_{_suffix}": _compare(operator.gt, _kind),
        f"greater_equals_{_suffix}": _compare(operator.ge, _kind),
    }


# --- Protocol buffers' wire format, as far as a checked expression needs it --------------------


def _message(data: bytes) -> dict[int, list]:
    """{field number: [values]}: varints as ints, fixed64 and length-delimited as bytes."""
    fields: dict[int, list] = {}
    at, end = 0, len(data)
    while at < end:
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            value = ("varint", value)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise _Unsupported
        fields.setdefault(number, []).append(value)
    return fields


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _varint_of(value) -> int:
    if not isinstance(value, tuple):
        raise _Unsupported
    return value[1]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _type(checked: dict):
    """A checked type: a primitive's number, "dyn", or None for anything else."""
    if 3 in checked:
        return _varint_of(checked[3][0])
    if 1 in checked:
        return _DYN
    return None

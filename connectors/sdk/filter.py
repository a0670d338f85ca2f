"""SailPoint ISC's connector filter language: parse once, evaluate fast.

``Filter(attributes).matcher(filter_string)`` has the call shape of the SaaS connector SDK's
``new Filter(attributes).matcher(filterString)``; ``Filter.compile(filter_string)`` returns a
:class:`CompiledFilter` (cached per string) whose ``matches(attributes)`` evaluates it without parsing
again; ``Filter.validate(filter_string, schema)`` lists the attribute and method names a filter uses that the
schema (or the language) does not know, so a filter with a typo can be refused when it is saved.

Reference
---------
* Language and examples: https://developer.sailpoint.com/docs/tools/sdk/typescript/filter
  (string literals in double quotes, ``true``/``false`` booleans, digits are numbers, bare ``null`` is null,
  names and values are case-sensitive, ``containsAll("a", "b")`` takes its values without braces;
  ``&&``, ``||``, ``!( ... )``; ``== != < > <= >=``; ``isNull() notNull() isEmpty() startsWith()
  endsWith() contains() containsAll()`` and their ``IgnoreCase`` variants).
* The SDK evaluates comparisons with JavaScript's operators on the attribute's value:
  https://github.com/sailpoint-oss/sp-connector-sdk-js/blob/main/lib/filter.ts and its behaviour tests
  https://github.com/sailpoint-oss/sp-connector-sdk-js/blob/main/lib/filter.spec.ts
* JavaScript comparison semantics: https://tc39.es/ecma262/#sec-islooselyequal,
  https://tc39.es/ecma262/#sec-isstrictlyequal, https://tc39.es/ecma262/#sec-islessthan,
  https://tc39.es/ecma262/#sec-stringtonumber, https://tc39.es/ecma262/#sec-numeric-types-number-tostring

Semantics
---------
* Values map to JavaScript types: ``None`` is null, an absent key is undefined, ``bool`` is boolean,
  ``int``/``float`` are numbers, ``str`` is a string, ``list``/``tuple`` are arrays, ``dict`` is an object.
* ``==``/``!=`` are JavaScript's loose (in)equality: ``"30" == 30``, ``true == 1``, ``null == undefined``,
  ``["a"] == "a"`` (an array compares as its ``join(",")``); ``===`` is strict (same type and value; arrays
  and objects only equal themselves). ``!=`` is the negation of ``==``.
* ``< > <= >=`` compare two strings by UTF-16 code units, anything else as numbers (``"10" > 9``,
  ``null >= 0``); a comparison with NaN (``"abc" < 1``, ``undefined < 1``) is false.
* An absent attribute is undefined in comparisons (``missing == null`` and ``missing != "x"`` are true,
  ``missing < 1`` is false). A method called on an absent attribute is false, whatever the method
  (``missing.isNull()`` is false, so ``!(missing.isNull())`` is true), as in the SDK.
* ``isNull()``/``isEmpty()`` are true for null and ``""``; ``isEmpty()`` is also true for an empty list or
  dict (the reference documents ``Groups.isEmpty()`` on a multi-valued attribute). ``notNull()`` and
  ``notEmpty()`` are their negations on a present attribute.
* ``startsWith endsWith contains containsAll`` on a string test substrings (arguments are converted to
  strings as JavaScript does: ``code.contains(12)``). On a list, ``contains``/``containsAll`` test for
  elements (JavaScript ``Array.includes``: ``1`` is not ``"1"`` nor ``true``). The ``IgnoreCase``
  variants lower-case both sides; on a list, ``containsIgnoreCase``/``containsAllIgnoreCase`` are true when
  every argument occurs in some string element (``tags.containsIgnoreCase("example")`` matches
  ``["dev@Example.com"]``, per the SDK's tests). A method on a value it does not apply to (``startsWith``
  on a number or list, ``contains`` on a number) is false; evaluation never raises.
* A method the language does not define (``name.Contains("x")``: names are case-sensitive) is false;
  :meth:`Filter.validate` reports it.

Syntax
------
* ``||`` binds looser than ``&&``; both are left-associative and short-circuit. ``!`` applies to a
  parenthesised expression, a method call or another ``!`` (``!age > 3`` is refused: write ``!(age > 3)``).
* A comparison's operands are attribute names or literals, on either side (``18 < age``,
  ``email == contactAddress``). Literals: ``"double"`` or ``'single'`` quoted strings with JavaScript
  escapes, numbers (``18``, ``-2.5``, ``1e3``), ``true``, ``false``, ``null``. The language has no list
  literals. Method arguments are literals.
* Attribute names are JavaScript identifiers (letters, digits, ``_``, ``$``; not starting with a digit),
  optionally dotted (``manager.name``): the full dotted key is looked up first, then nested dicts. Names
  cannot be quoted. The last dotted segment before ``(`` is the method.
* A filter that is not a boolean expression (``name``, ``""``), that uses an operator the language does
  not have (``!==``, ``=``, ``&``), calls a known method with the wrong number of arguments, or is
  otherwise malformed raises :class:`FilterError`, whose ``position`` is a 0-based character offset into
  the filter string, also given in the message (``unexpected ')' at position 14``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from .errors import ConnectorError

__all__ = ["CompiledFilter", "Filter", "FilterError", "KNOWN_METHODS", "interpret"]


class FilterError(ConnectorError, ValueError):
    """A filter string is malformed. ``position`` is the 0-based character offset of the problem."""

    def __init__(self, message: str, position: int, filter_string: str = ""):
        super().__init__(f"{message} at position {position}")
        self.reason = message
        self.position = position
        self.filter_string = filter_string


# ---------------------------------------------------------------------------------------------------------
# JavaScript value semantics
# ---------------------------------------------------------------------------------------------------------


class _Undefined:
    """JavaScript's ``undefined``: the value of an attribute that is absent."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()

# Kinds of values, as JavaScript sees them.
_UNDEF, _NULL, _BOOL, _NUM, _STR, _ARR, _OBJ = range(7)


def _kind(v: Any) -> int:
    if v is UNDEFINED:
        return _UNDEF
    if v is None:
        return _NULL
    if isinstance(v, bool):
        return _BOOL
    if isinstance(v, (int, float)):
        return _NUM
    if isinstance(v, str):
        return _STR
    if isinstance(v, (list, tuple)):
        return _ARR
    return _OBJ


# JavaScript's WhiteSpace and LineTerminator code points, trimmed by StringToNumber.
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL_RE = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX_RE = re.compile(r"0(?:([xX][0-9a-fA-F]+)|([oO][0-7]+)|([bB][01]+))")


def _string_to_number(s: str) -> float:
    s = s.strip(_JS_SPACE)
    if not s:
        return 0.0
    if _DECIMAL_RE.fullmatch(s):
        return float(s.replace("Infinity", "inf"))
    m = _RADIX_RE.fullmatch(s)
    if m:
        return float(int(s[2:], 16 if m.group(1) else 8 if m.group(2) else 2))
    return math.nan


def _to_number(v: Any) -> float:
    k = _kind(v)
    if k == _NUM:
        return v
    if k == _STR:
        return _string_to_number(v)
    if k == _BOOL:
        return 1.0 if v else 0.0
    if k == _NULL:
        return 0.0
    if k == _UNDEF:
        return math.nan
    return _to_number(_to_primitive(v))


def _number_to_string(n: float) -> str:
    if isinstance(n, int):
        if abs(n) < 10**21:
            return str(n)
        n = float(n)
    if n != n:
        return "NaN"
    if n == 0:
        return "0"
    if math.isinf(n):
        return "Infinity" if n > 0 else "-Infinity"
    sign = "-" if n < 0 else ""
    r = repr(abs(n))  # shortest round-trip digits, as JavaScript uses
    mantissa, _, exp = r.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # decimal point position relative to ``digits``
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        out = digits + "0" * (point - k)
    elif 0 < point <= 21:
        out = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        out = "0." + "0" * -point + digits
    else:
        e = point - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + out


def _to_string(v: Any) -> str:
    k = _kind(v)
    if k == _STR:
        return v
    if k == _NUM:
        return _number_to_string(v)
    if k == _BOOL:
        return "true" if v else "false"
    if k == _NULL:
        return "null"
    if k == _UNDEF:
        return "undefined"
    return _to_primitive(v)


def _to_primitive(v: Any) -> Any:
    """ToPrimitive: arrays ``join(",")``, dicts are ``"[object Object]"``, foreign values their ``str``."""
    k = _kind(v)
    if k == _ARR:
        return ",".join("" if e is None or e is UNDEFINED else _to_string(e) for e in v)
    if k == _OBJ:
        return "[object Object]" if isinstance(v, Mapping) else str(v)
    return v


def loose_equals(x: Any, y: Any) -> bool:
    """JavaScript ``x == y``."""
    kx, ky = _kind(x), _kind(y)
    while True:
        if kx == ky:
            if kx <= _NULL:
                return True
            if kx >= _ARR:
                return x is y
            return x == y
        if kx <= _NULL or ky <= _NULL:
            return kx <= _NULL and ky <= _NULL
        if kx == _NUM and ky == _STR:
            return x == _string_to_number(y)
        if kx == _STR and ky == _NUM:
            return _string_to_number(x) == y
        if kx == _BOOL:
            x, kx = (1 if x else 0), _NUM
        elif ky == _BOOL:
            y, ky = (1 if y else 0), _NUM
        elif kx >= _ARR:
            x = _to_primitive(x)
            kx = _kind(x)
        elif ky >= _ARR:
            y = _to_primitive(y)
            ky = _kind(y)
        else:
            return False


def strict_equals(x: Any, y: Any) -> bool:
    """JavaScript ``x === y``."""
    kx = _kind(x)
    if kx != _kind(y):
        return False
    if kx <= _NULL:
        return True
    if kx >= _ARR:
        return x is y
    return x == y


def _utf16_less(a: str, b: str) -> bool:
    if a.isascii() or b.isascii():
        return a < b  # code points and UTF-16 code units order ASCII-vs-anything the same way
    return a.encode("utf-16-be", "surrogatepass") < b.encode("utf-16-be", "surrogatepass")


def _less_than(x: Any, y: Any) -> bool | None:
    """JavaScript's IsLessThan(x, y): ``True``, ``False`` or ``None`` (undefined: a NaN was involved)."""
    px = _to_primitive(x) if _kind(x) >= _ARR else x
    py = _to_primitive(y) if _kind(y) >= _ARR else y
    if isinstance(px, str) and isinstance(py, str):
        return _utf16_less(px, py)
    nx, ny = _to_number(px), _to_number(py)
    if nx != nx or ny != ny:
        return None
    return nx < ny


def js_lt(x: Any, y: Any) -> bool:
    """JavaScript ``x < y``."""
    return _less_than(x, y) is True


def js_gt(x: Any, y: Any) -> bool:
    """JavaScript ``x > y``."""
    return _less_than(y, x) is True


def js_le(x: Any, y: Any) -> bool:
    """JavaScript ``x <= y``."""
    return _less_than(y, x) is False


def js_ge(x: Any, y: Any) -> bool:
    """JavaScript ``x >= y``."""
    return _less_than(x, y) is False


def _same_value_zero(x: Any, y: Any) -> bool:
    kx = _kind(x)
    if kx != _kind(y):
        return False
    if kx == _NUM and x != x:
        return y != y
    if kx <= _NULL:
        return True
    if kx >= _ARR:
        return x is y
    return x == y


# ---------------------------------------------------------------------------------------------------------
# Methods. Each takes the attribute's (present) value and the argument values; none raises.
# ---------------------------------------------------------------------------------------------------------


def _m_is_null(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v == "")


def _m_not_null(v: Any) -> bool:
    return not _m_is_null(v)


def _m_is_empty(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v) == 0
    return False


def _m_not_empty(v: Any) -> bool:
    return not _m_is_empty(v)


def _m_starts_with(v: Any, arg: Any) -> bool:
    return isinstance(v, str) and v.startswith(_to_string(arg))


def _m_ends_with(v: Any, arg: Any) -> bool:
    return isinstance(v, str) and v.endswith(_to_string(arg))


def _m_starts_with_ic(v: Any, arg: Any) -> bool:
    return isinstance(v, str) and v.lower().startswith(_to_string(arg).lower())


def _m_ends_with_ic(v: Any, arg: Any) -> bool:
    return isinstance(v, str) and v.lower().endswith(_to_string(arg).lower())


def _m_contains_all(v: Any, *args: Any) -> bool:
    if isinstance(v, str):
        return all(_to_string(a) in v for a in args)
    if isinstance(v, (list, tuple)):
        return all(any(_same_value_zero(e, a) for e in v) for a in args)
    return False


def _m_contains_all_ic(v: Any, *args: Any) -> bool:
    if isinstance(v, str):
        low = v.lower()
        return all(_to_string(a).lower() in low for a in args)
    if isinstance(v, (list, tuple)):
        lows = [e.lower() for e in v if isinstance(e, str)]
        return all(any(needle in e for e in lows) for needle in (_to_string(a).lower() for a in args))
    return False


def _m_contains(v: Any, arg: Any) -> bool:
    return _m_contains_all(v, arg)


def _m_contains_ic(v: Any, arg: Any) -> bool:
    return _m_contains_all_ic(v, arg)


# name -> (implementation, minimum arguments, maximum arguments or None)
_METHODS: dict[str, tuple[Any, int, int | None]] = {
    "isNull": (_m_is_null, 0, 0),
    "notNull": (_m_not_null, 0, 0),
    "isEmpty": (_m_is_empty, 0, 0),
    "notEmpty": (_m_not_empty, 0, 0),
    "startsWith": (_m_starts_with, 1, 1),
    "endsWith": (_m_ends_with, 1, 1),
    "contains": (_m_contains, 1, 1),
    "containsAll": (_m_contains_all, 1, None),
    "startsWithIgnoreCase": (_m_starts_with_ic, 1, 1),
    "endsWithIgnoreCase": (_m_ends_with_ic, 1, 1),
    "containsIgnoreCase": (_m_contains_ic, 1, 1),
    "containsAllIgnoreCase": (_m_contains_all_ic, 1, None),
}
KNOWN_METHODS: frozenset[str] = frozenset(_METHODS)

_COMPARATORS = {
    "==": loose_equals,
    "!=": lambda x, y: not loose_equals(x, y),
    "===": strict_equals,
    "<": js_lt,
    ">": js_gt,
    "<=": js_le,
    ">=": js_ge,
}


# ---------------------------------------------------------------------------------------------------------
# Syntax tree
# ---------------------------------------------------------------------------------------------------------


class Attr(NamedTuple):
    name: str
    position: int


class Literal(NamedTuple):
    value: Any
    position: int


class Compare(NamedTuple):
    op: str
    left: Attr | Literal
    right: Attr | Literal
    position: int


class Call(NamedTuple):
    attr: Attr
    method: str
    args: tuple[Literal, ...]
    position: int  # of the method name


class Not(NamedTuple):
    operand: Node
    position: int


class And(NamedTuple):
    operands: tuple[Node, ...]  # two or more


class Or(NamedTuple):
    operands: tuple[Node, ...]  # two or more


Node = Compare | Call | Not | And | Or


def _lookup(attributes: Mapping[str, Any], name: str) -> Any:
    """The value of ``name``: the key itself, else (for dotted names) a walk through nested dicts."""
    value = attributes.get(name, UNDEFINED)
    if value is not UNDEFINED or "." not in name:
        return value
    value = attributes
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return UNDEFINED
        value = value.get(part, UNDEFINED)
        if value is UNDEFINED:
            return UNDEFINED
    return value


def _operand(node: Attr | Literal, attributes: Mapping[str, Any]) -> Any:
    return _lookup(attributes, node.name) if isinstance(node, Attr) else node.value


def interpret(node: Node, attributes: Mapping[str, Any]) -> bool:
    """Evaluate a syntax tree by walking it: the reference the compiled form is checked against."""
    if isinstance(node, Compare):
        return _COMPARATORS[node.op](_operand(node.left, attributes), _operand(node.right, attributes))
    if isinstance(node, Call):
        value = _lookup(attributes, node.attr.name)
        spec = _METHODS.get(node.method)
        if value is UNDEFINED or spec is None:
            return False
        return spec[0](value, *(a.value for a in node.args))
    if isinstance(node, Not):
        return not interpret(node.operand, attributes)
    if isinstance(node, And):
        return all(interpret(operand, attributes) for operand in node.operands)
    if isinstance(node, Or):
        return any(interpret(operand, attributes) for operand in node.operands)
    raise TypeError(f"not a filter node: {node!r}")


# ---------------------------------------------------------------------------------------------------------
# Tokens and parser
# ---------------------------------------------------------------------------------------------------------

_NAME, _STRING, _NUMBER, _LITERAL, _OP, _PUNCT, _END = (
    "name",
    "string",
    "number",
    "literal",
    "operator",
    "punct",
    "end",
)
_OPERATORS = ("===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!")
_NUMBER_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_DEPTH = 64  # keeps the generated code within Python's nesting limits
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


class _Token(NamedTuple):
    kind: str
    value: Any
    position: int
    text: str


def _is_name_start(c: str) -> bool:
    return c.isalpha() or c == "_" or c == "$"


def _is_name_part(c: str) -> bool:
    return c.isalnum() or c == "_" or c == "$"


def _describe(tok: _Token) -> str:
    if tok.kind == _END:
        return "end of filter"
    if tok.kind == _NAME:
        return f"name {tok.text!r}"
    if tok.kind in (_STRING, _NUMBER):
        return f"{tok.kind} {tok.text}"
    return repr(tok.text)


def _tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in _JS_SPACE:
            i += 1
            continue
        start = i
        if _is_name_start(c):
            i += 1
            while i < n and _is_name_part(src[i]):
                i += 1
            word = src[start:i]
            if word in ("true", "false"):
                tokens.append(_Token(_LITERAL, word == "true", start, word))
            elif word == "null":
                tokens.append(_Token(_LITERAL, None, start, word))
            else:
                tokens.append(_Token(_NAME, word, start, word))
            continue
        if c in "0123456789" or (c in ".-+" and _NUMBER_RE.match(src, i + (c != "."))):
            if c in "-+":
                i += 1
            m = _NUMBER_RE.match(src, i)
            if not m:
                raise FilterError(f"malformed number {src[i]!r}", i, src)
            text = m.group()
            i = m.end()
            if i < n and (_is_name_part(src[i]) or src[i] == "."):
                raise FilterError(f"malformed number {src[start : i + 1]!r}", start, src)
            value: Any = float(text) if any(ch in text for ch in ".eE") else int(text)
            if c == "-":
                value = -value
            if isinstance(value, int) and abs(value) > 2**53:
                value = float(value)  # a JavaScript number is a double
            tokens.append(_Token(_NUMBER, value, start, src[start:i]))
            continue
        if c in "\"'":
            i += 1
            out: list[str] = []
            while True:
                if i >= n:
                    raise FilterError("unterminated string", start, src)
                ch = src[i]
                if ch == c:
                    i += 1
                    break
                if ch in "\n\r\u2028\u2029":
                    raise FilterError("unterminated string", start, src)
                if ch != "\\":
                    out.append(ch)
                    i += 1
                    continue
                i += 1
                if i >= n:
                    raise FilterError("unterminated string", start, src)
                esc = src[i]
                if esc in "xu":
                    text, i = _read_escape(src, i)
                    out.append(text)
                    continue
                if esc == "\r" and src.startswith("\r\n", i):
                    i += 2
                    continue
                if esc in "\n\r\u2028\u2029":
                    i += 1
                    continue
                out.append(_ESCAPES.get(esc, esc))
                i += 1
            tokens.append(_Token(_STRING, "".join(out), start, src[start:i]))
            continue
        for op in _OPERATORS:
            if src.startswith(op, i):
                tokens.append(_Token(_OP, op, start, op))
                i += len(op)
                break
        else:
            if c in "(),.":
                tokens.append(_Token(_PUNCT, c, start, c))
                i += 1
            elif c in "[{":
                raise FilterError(
                    f"unexpected {c!r} (the filter language has no list literals; "
                    'write containsAll("a", "b"))',
                    start,
                    src,
                )
            else:
                raise FilterError(f"unexpected {c!r}", start, src)
    tokens.append(_Token(_END, None, n, ""))
    return tokens


def _read_escape(src: str, i: int) -> tuple[str, int]:
    """Decode ``\\xHH``, ``\\uHHHH`` or ``\\u{H...}`` (``i`` is at the ``x``/``u``): (text, next index)."""
    esc_at = i - 1
    if src[i] == "x":
        hexdigits, end = src[i + 1 : i + 3], i + 3
    elif src.startswith("{", i + 1):
        close = src.find("}", i + 2)
        if close < 0:
            raise FilterError("malformed \\u escape", esc_at, src)
        hexdigits, end = src[i + 2 : close], close + 1
    else:
        hexdigits, end = src[i + 1 : i + 5], i + 5
    expected = 2 if src[i] == "x" else 4
    if (
        not hexdigits
        or any(ch not in "0123456789abcdefABCDEF" for ch in hexdigits)
        or ("{" not in src[i : i + 2] and len(hexdigits) != expected)
        or int(hexdigits, 16) > 0x10FFFF
    ):
        raise FilterError(f"malformed \\{src[i]} escape", esc_at, src)
    return chr(int(hexdigits, 16)), end


_COMPARISON_OPS = frozenset(("==", "!=", "===", "<", ">", "<=", ">="))


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.tokens = _tokenize(src)
        self.i = 0
        self.depth = 0

    def error(self, message: str, position: int) -> FilterError:
        return FilterError(message, position, self.src)

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def unexpected(self, tok: _Token) -> FilterError:
        if tok.kind == _OP and tok.value == "!==":
            return self.error("unsupported operator '!==' (use !(a === b))", tok.position)
        return self.error(f"unexpected {_describe(tok)}", tok.position)

    def parse(self) -> Node:
        if self.peek().kind == _END:
            raise self.error("empty filter", 0)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != _END:
            raise self.unexpected(tok)
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.peek().kind == _OP and self.peek().value == "||":
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_unary()]
        while self.peek().kind == _OP and self.peek().value == "&&":
            self.take()
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_unary(self) -> Node:
        tok = self.peek()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"filter nested more than {_MAX_DEPTH} levels deep", tok.position)
        try:
            if tok.kind == _OP and tok.value == "!":
                self.take()
                nxt = self.peek()
                operand = self.parse_unary()
                if isinstance(operand, Compare) and not (nxt.kind == _PUNCT and nxt.value == "("):
                    raise self.error(
                        "'!' applies to a parenthesised expression or a method call (write !(a == b))",
                        tok.position,
                    )
                return Not(operand, tok.position)
            if tok.kind == _PUNCT and tok.value == "(":
                self.take()
                node = self.parse_or()
                close = self.peek()
                if not (close.kind == _PUNCT and close.value == ")"):
                    if close.kind == _END:
                        raise self.error("unclosed '('", tok.position)
                    raise self.unexpected(close)
                self.take()
                return node
            return self.parse_clause()
        finally:
            self.depth -= 1

    def parse_operand(self) -> Attr | Literal:
        tok = self.take()
        if tok.kind in (_STRING, _NUMBER, _LITERAL):
            return Literal(tok.value, tok.position)
        if tok.kind == _NAME:
            parts = [tok.value]
            while self.peek().kind == _PUNCT and self.peek().value == ".":
                dot = self.take()
                seg = self.take()
                if seg.kind != _NAME:
                    if seg.kind == _END:
                        raise self.error("expected a name after '.'", dot.position + 1)
                    raise self.unexpected(seg)
                parts.append(seg.value)
            return Attr(".".join(parts), tok.position)
        raise self.unexpected(tok)

    def parse_clause(self) -> Node:
        left = self.parse_operand()
        nxt = self.peek()
        if isinstance(left, Literal) and nxt.kind == _PUNCT and nxt.value == ".":
            raise self.error(
                "a method is called on an attribute (attribute.method()), not on a literal", nxt.position
            )
        if nxt.kind == _PUNCT and nxt.value == "(":
            if not isinstance(left, Attr) or "." not in left.name:
                what = "a literal" if isinstance(left, Literal) else f"{left.name!r}"
                raise self.error(
                    f"a method is called on an attribute (attribute.method()), not on {what}", nxt.position
                )
            attr_name, _, method = left.name.rpartition(".")
            method_pos = self.tokens[self.i - 1].position  # the method name is the token before '('
            self.take()
            args = self.parse_args(nxt)
            spec = _METHODS.get(method)
            if spec is not None:
                low, high = spec[1], spec[2]
                if len(args) < low or (high is not None and len(args) > high):
                    want = (
                        "no arguments" if high == 0 else "1 argument" if high == 1 else "at least 1 argument"
                    )
                    raise self.error(f"{method}() takes {want}, got {len(args)}", method_pos)
            return Call(Attr(attr_name, left.position), method, tuple(args), method_pos)
        if nxt.kind == _OP and nxt.value in _COMPARISON_OPS:
            self.take()
            right = self.parse_operand()
            after = self.peek()
            if after.kind == _OP and after.value in _COMPARISON_OPS:
                raise self.error(
                    f"unexpected {after.value!r} (comparisons cannot be chained)", after.position
                )
            if after.kind == _PUNCT and after.value == "(":
                raise self.error("a method call cannot be compared; use it on its own", after.position)
            return Compare(nxt.value, left, right, nxt.position)
        if nxt.kind == _OP and nxt.value == "!==":
            raise self.unexpected(nxt)
        desc = f"'{left.name}'" if isinstance(left, Attr) else self.src[left.position : nxt.position].strip()
        if nxt.kind == _END:
            raise self.error(f"expected a comparison or a method call after {desc}", nxt.position)
        raise self.error(
            f"unexpected {_describe(nxt)} (expected a comparison or a method call after {desc})", nxt.position
        )

    def parse_args(self, open_tok: _Token) -> list[Literal]:
        args: list[Literal] = []
        if self.peek().kind == _PUNCT and self.peek().value == ")":
            self.take()
            return args
        while True:
            tok = self.peek()
            if tok.kind == _END:
                raise self.error("unclosed '('", open_tok.position)
            arg = self.parse_operand()
            if isinstance(arg, Attr):
                raise self.error(f'method arguments are literals (quote strings: "{arg.name}")', arg.position)
            args.append(arg)
            sep = self.take()
            if sep.kind == _PUNCT and sep.value == ")":
                return args
            if sep.kind == _PUNCT and sep.value == ",":
                continue
            if sep.kind == _END:
                raise self.error("unclosed '('", open_tok.position)
            raise self.unexpected(sep)


def parse(filter_string: str) -> Node:
    """Parse a filter into its syntax tree; raises :class:`FilterError` if it is malformed."""
    if not isinstance(filter_string, str):
        raise TypeError(f"a filter is a string, not {type(filter_string).__name__}")
    return _Parser(filter_string).parse()


# ---------------------------------------------------------------------------------------------------------
# Compiler: syntax tree -> one Python lambda over the attribute dict
# ---------------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Compiler:
    """Generates a Python expression from a syntax tree.

    Only the tree is turned into code: attribute names and literal values are embedded with ``repr`` (for
    ``str``, ``int``, ``bool``, ``None`` and finite ``float``) or bound as named constants, never spliced in
    as text. Each clause reads its attribute once into a local (``_vN``) and takes a fast path when the
    value's exact type is the one the literal allows (a ``str`` compared to a string literal, a number to a
    number literal); any other value goes to the general JavaScript-semantics helper, so both paths agree.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "__builtins__": {},
            "_U": UNDEFINED,
            "_str": str,
            "_int": int,
            "_float": float,
            "_bool": bool,
            "_list": list,
            "_lookup": _lookup,
            "_eq": loose_equals,
            "_seq": strict_equals,
            "_lt": js_lt,
            "_gt": js_gt,
            "_le": js_le,
            "_ge": js_ge,
        }
        self.counter = 0

    def const(self, value: Any) -> str:
        if (
            value is None
            or isinstance(value, (bool, int, str))
            or (isinstance(value, float) and math.isfinite(value))
        ):
            return repr(value)
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def bind(self, value: Any, prefix: str) -> str:
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def var(self) -> str:
        self.counter += 1
        return f"_v{self.counter}"

    def get(self, attr: Attr) -> str:
        if "." in attr.name:
            return f"_lookup(a, {attr.name!r})"
        return f"a.get({attr.name!r}, _U)"

    def expr(self, node: Node) -> str:
        if isinstance(node, Or):
            return "(" + " or ".join(self.expr(operand) for operand in node.operands) + ")"
        if isinstance(node, And):
            return "(" + " and ".join(self.expr(operand) for operand in node.operands) + ")"
        if isinstance(node, Not):
            return f"(not {self.expr(node.operand)})"
        if isinstance(node, Call):
            return self.call(node)
        return self.compare(node)

    def compare(self, node: Compare) -> str:
        op, left, right = node.op, node.left, node.right
        if isinstance(left, Literal) and isinstance(right, Attr):
            # Put the attribute on the left: a op b == b mirrored(op) a, with JavaScript's operators too.
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
            left, right = right, left
        if isinstance(left, Literal) and isinstance(right, Literal):
            return repr(bool(_COMPARATORS[op](left.value, right.value)))
        if isinstance(right, Attr):
            helper = self.bind(_COMPARATORS[op], "_cmp")
            return f"{helper}({self.get(left)}, {self.get(right)})"
        negate = op == "!="
        if negate:
            op = "=="
        v, get, lit = self.var(), self.get(left), right.value
        code = self.literal_compare(op, v, get, lit)
        return f"(not {code})" if negate else code

    def literal_compare(self, op: str, v: str, get: str, lit: Any) -> str:
        c = self.const(lit)
        helper = {"==": "_eq", "===": "_seq", "<": "_lt", ">": "_gt", "<=": "_le", ">=": "_ge"}[op]
        slow = f"{helper}({v}, {c})"
        if lit is None and op == "==":  # null == null and null == undefined, nothing else
            return f"(({v} := {get}) is None or {v} is _U)"
        if lit is None and op == "===":
            return f"({get} is None)"
        if isinstance(lit, bool) and op in ("==", "==="):
            return f"({v} is {c} if ({v} := {get}).__class__ is _bool else {slow})"
        if _is_number(lit):
            # Python orders and equates int/float as JavaScript does numbers (NaN compares false).
            pyop = "==" if op == "===" else op
            return (
                f"({v} {pyop} {c} if ({v} := {get}).__class__ is _int or {v}.__class__ is _float else {slow})"
            )
        if isinstance(lit, str) and (op in ("==", "===") or lit.isascii()):
            # Equal strs are equal; an ASCII str orders the same by code points as by UTF-16 code units.
            pyop = "==" if op == "===" else op
            return f"({v} {pyop} {c} if ({v} := {get}).__class__ is _str else {slow})"
        return f"{helper}({get}, {c})"

    def call(self, node: Call) -> str:
        spec = _METHODS.get(node.method)
        if spec is None:
            return "False"
        v, get = self.var(), self.get(node.attr)
        args = [a.value for a in node.args]
        method = node.method
        impl = self.bind(spec[0], "_m")
        slow = f"({v} is not _U and {impl}({v}{''.join(', ' + self.const(x) for x in args)}))"
        if method == "isNull":
            return f"(({v} := {get}) is None or {v} == '')"
        if method == "notNull":
            return f"(({v} := {get}) is not None and {v} is not _U and {v} != '')"
        if method == "isEmpty":
            return f"({v} == '' if ({v} := {get}).__class__ is _str else {slow})"
        if method == "notEmpty":
            return f"({v} != '' if ({v} := {get}).__class__ is _str else {slow})"
        if not all(isinstance(x, str) for x in args):
            return f"(({v} := {get}) is not _U and {impl}({v}{''.join(', ' + self.const(x) for x in args)}))"
        first = args[0]
        on_list = None  # fast path for a list value, where one is simple
        if method == "startsWith":
            fast = f"{v}.startswith({self.const(first)})"
        elif method == "endsWith":
            fast = f"{v}.endswith({self.const(first)})"
        elif method in ("contains", "containsAll"):
            # A str argument is an element of a list (SameValueZero) exactly when Python's ``in`` says so.
            fast = on_list = " and ".join(f"{self.const(x)} in {v}" for x in args)
        elif method == "startsWithIgnoreCase":
            fast = f"{v}.lower().startswith({self.const(first.lower())})"
        elif method == "endsWithIgnoreCase":
            fast = f"{v}.lower().endswith({self.const(first.lower())})"
        else:  # containsIgnoreCase, containsAllIgnoreCase
            fast = " and ".join(f"{self.const(x.lower())} in {v}.lower()" for x in args)
        test = f"({v} := {get}).__class__"
        if on_list is not None:
            return f"(({fast}) if (_t := {test}) is _str else ({on_list}) if _t is _list else {slow})"
        return f"(({fast}) if {test} is _str else {slow})"


class CompiledFilter:
    """A parsed filter, compiled to a Python function. Get one with :meth:`Filter.compile`.

    ``matches(attributes) -> bool`` evaluates it against one object's attribute dict; it is the compiled
    function itself (no wrapper call). ``source`` is the filter string, ``tree`` its syntax tree,
    ``attributes`` and ``methods`` the names it uses (in order of first use), ``python`` the generated code.
    """

    __slots__ = ("source", "tree", "attributes", "methods", "python", "matches", "__weakref__")

    def __init__(self, source: str, tree: Node):
        self.source = source
        self.tree = tree
        attributes: dict[str, None] = {}
        methods: dict[str, None] = {}
        _collect_names(tree, attributes, methods)
        self.attributes: tuple[str, ...] = tuple(attributes)
        self.methods: tuple[str, ...] = tuple(methods)
        compiler = _Compiler()
        body = compiler.expr(tree)
        self.python = f"lambda a: {body}"
        code = compile(self.python, "<filter>", "eval")
        self.matches = eval(code, compiler.namespace)  # noqa: S307 - code generated from our own tree only

    def interpret(self, attributes: Mapping[str, Any]) -> bool:
        """Evaluate by walking the syntax tree (slower; the reference for :attr:`matches`)."""
        return interpret(self.tree, attributes)

    def __repr__(self) -> str:
        return f"CompiledFilter({self.source!r})"


def _collect_names(node: Node, attributes: dict[str, None], methods: dict[str, None]) -> None:
    if isinstance(node, (And, Or)):
        for operand in node.operands:
            _collect_names(operand, attributes, methods)
    elif isinstance(node, Not):
        _collect_names(node.operand, attributes, methods)
    elif isinstance(node, Call):
        attributes.setdefault(node.attr.name, None)
        methods.setdefault(node.method, None)
    else:
        for side in (node.left, node.right):
            if isinstance(side, Attr):
                attributes.setdefault(side.name, None)


@lru_cache(maxsize=1024)
def _compile_cached(filter_string: str) -> CompiledFilter:
    return CompiledFilter(filter_string, parse(filter_string))


def _schema_names(schema: Iterable[Any]) -> set[str]:
    names: set[str] = set()
    for item in schema:
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            names.add(item["name"])
        else:
            raise TypeError(f"schema items are attribute names or {{'name': ...}} dicts, not {item!r}")
    return names


class Filter:
    """Evaluates filter strings against one object's attributes, as the SaaS connector SDK's ``Filter``.

    >>> Filter({"department": "Engineering", "age": 30}).matcher('department == "Engineering" && age > 18')
    True
    """

    __slots__ = ("attributes",)

    def __init__(self, attributes: Mapping[str, Any]):
        self.attributes = attributes

    def matcher(self, filter_string: str) -> bool:
        """Whether the attributes match ``filter_string`` (compiled once per distinct string, then cached)."""
        return _compile_cached(filter_string).matches(self.attributes)

    @staticmethod
    def compile(filter_string: str) -> CompiledFilter:
        """Parse and compile ``filter_string``; the same string returns the same cached object.

        Raises :class:`FilterError` if it is malformed, ``TypeError`` if it is not a string.
        """
        if not isinstance(filter_string, str):
            raise TypeError(f"a filter is a string, not {type(filter_string).__name__}")
        return _compile_cached(filter_string)

    @staticmethod
    def validate(filter_string: str, schema: Iterable[Any]) -> list[str]:
        """Names in ``filter_string`` that never match: unknown attributes, then unknown methods.

        ``schema`` is an iterable of attribute names, or of dicts with a ``"name"`` key (a connector spec's
        ``accountSchema.attributes``). A dotted name is known if it, or one of its dotted prefixes (a dict
        attribute), is in the schema. Returns ``[]`` for a good filter; raises :class:`FilterError` if the
        filter is malformed.
        """
        compiled = Filter.compile(filter_string)
        known = _schema_names(schema)
        problems = []
        for name in compiled.attributes:
            parts = name.split(".")
            if not any(".".join(parts[:i]) in known for i in range(len(parts), 0, -1)):
                problems.append(name)
        problems.extend(m for m in compiled.methods if m not in KNOWN_METHODS)
        return problems

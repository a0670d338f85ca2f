"""Tests for the filter language (connectors.sdk.filter). Plain pytest; no Django."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.sdk.filter import (
    KNOWN_METHODS,
    UNDEFINED,
    CompiledFilter,
    Filter,
    FilterError,
    _compile_cached,
    _number_to_string,
    _string_to_number,
    interpret,
    js_ge,
    js_gt,
    js_le,
    js_lt,
    loose_equals,
    strict_equals,
)

# The attributes of the SDK's own behaviour tests, plus a few of other types.
PERSON = {
    "name": "Alice",
    "age": 30,
    "email": "alice@example.com",
    "address": ["Pune", "Austin"],
    "department": "",
    "tags": ["developer@example.com", "TeamLead@Example.org"],
    "locations": ["Hyderabad", "Chennai", "Mumbai"],
    "manager": None,
    "inactive": False,
    "score": "42",
    "ratio": 2.5,
    "groups": [],
    "ids": [1, 2, 3],
    "meta": {},
    "profile": {"city": "Austin", "level": 3},
    "cost.center": "CC-1",
}


def check(filter_string: str, expected: bool, attrs: dict = PERSON) -> None:
    compiled = Filter.compile(filter_string)
    assert compiled.matches(attrs) is expected, compiled.python
    assert compiled.interpret(attrs) is expected
    assert Filter(attrs).matcher(filter_string) is expected


# ---------------------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        # ==, != and === with the matching type
        ('name == "Alice"', True),
        ('name == "alice"', False),
        ('name != "Alice"', False),
        ('name != "Tom"', True),
        ('name === "Alice"', True),
        ("age == 30", True),
        ("age == 30.0", True),
        ("age != 25", True),
        ("age != 30", False),
        ("age === 30", True),
        ("ratio == 2.5", True),
        ("inactive == false", True),
        ("inactive != false", False),
        ("inactive === false", True),
        ("inactive == true", False),
        # relational on numbers
        ("age > 25", True),
        ("age > 35", False),
        ("age < 35", True),
        ("age < 25", False),
        ("age >= 30", True),
        ("age >= 40", False),
        ("age <= 30", True),
        ("age <= 25", False),
        ("age > -1", True),
        ("age < 1e3", True),
        ("ratio < .5e1", True),
        # literal on the left, attribute on both sides
        ("18 < age", True),
        ("40 <= age", False),
        ('"Alice" == name', True),
        ("score == age", False),
        ("name == name", True),
        ("address == address", True),
        ("address === address", True),
        # literal against literal
        ("1 == 1", True),
        ('"a" > "b"', False),
    ],
)
def test_comparison_operators(filter_string, expected):
    check(filter_string, expected)


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        # number vs numeric string (JavaScript ==)
        ("score == 42", True),
        ('score == "42"', True),
        ("score === 42", False),
        ('age == "30"', True),
        ('age === "30"', False),
        ('age == " 30 "', True),
        ('age == "0x1E"', True),
        ('age == "3e1"', True),
        ('age == "30abc"', False),
        ('age != "30"', False),
        ("score > 41", True),
        ('score > "5"', False),  # two strings compare as strings: "42" < "5"
        ('age > "5"', True),  # number vs string compares as numbers
        ("name > 1", False),  # NaN
        ("name <= 1", False),  # NaN
        ("name >= 1", False),
        # null comparisons
        ("manager == null", True),
        ("manager === null", True),
        ("manager != null", False),
        ("name == null", False),
        ("name != null", True),
        ("manager == 0", False),
        ("manager >= 0", True),
        ("manager <= 0", True),
        ("manager < 1", True),
        ('manager == ""', False),
        ("manager == false", False),
        # booleans convert to numbers for ==, relational
        ("inactive == 0", True),
        ('inactive == ""', True),
        ('inactive == "0"', True),
        ('inactive == "false"', False),
        ("inactive < 1", True),
        ("inactive === 0", False),
        # empty string converts to 0
        ("department == 0", True),
        ("department == false", True),
        ("department === 0", False),
        ("department < 1", True),
        # lists compare as their join(",")
        ('address == "Pune,Austin"', True),
        ('address === "Pune,Austin"', False),
        ('address != "Pune,Austin"', False),
        ('ids == "1,2,3"', True),
        ('groups == ""', True),
        ("groups == 0", True),
        ("groups == false", True),
        ("groups == null", False),
        ("ids > 0", False),  # "1,2,3" is NaN
        ('address > "P"', True),
        # dicts compare as "[object Object]"
        ('meta == "[object Object]"', True),
        ("meta == 0", False),
        ("meta == null", False),
        # dotted names: the full key first, then nested dicts
        ('cost.center == "CC-1"', True),
        ('profile.city == "Austin"', True),
        ("profile.level >= 3", True),
        ("profile.missing == null", True),
        ("name.first == null", True),
    ],
)
def test_javascript_comparisons(filter_string, expected):
    check(filter_string, expected)


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        # An absent attribute is undefined: loosely equal to null only, NaN for ordering.
        ("missing == null", True),
        ("missing != null", False),
        ("missing === null", False),
        ('missing == "x"', False),
        ('missing != "x"', True),
        ("missing == 0", False),
        ("missing == false", False),
        ("missing < 1", False),
        ("missing >= 0", False),
        ("missing == missing2", True),
        ("missing === missing2", True),
        # A method on an absent attribute is false, whatever the method.
        ("missing.isNull()", False),
        ("missing.notNull()", False),
        ("missing.isEmpty()", False),
        ("missing.notEmpty()", False),
        ('missing.contains("x")', False),
        ('missing.startsWith("x")', False),
        ("!(missing.isNull())", True),
        # Unknown methods are false (names are case-sensitive).
        ('name.Contains("Alice")', False),
        ("name.length()", False),
        ("!(name.length())", True),
        ("age.containsAllIgnoreCase1()", False),
        ("missing.frobnicate(1, 2)", False),
    ],
)
def test_absent_attributes_and_unknown_methods(filter_string, expected):
    check(filter_string, expected)


# ---------------------------------------------------------------------------------------------------------
# Logic
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ('age > 25 && name === "Alice"', True),
        ('age < 25 && name === "Alice"', False),
        ('age < 25 || name === "Alice"', True),
        ('age < 25 || name === "Tom"', False),
        # && binds tighter than ||
        ('name == "Tom" && age == 1 || age == 30', True),  # (F && F) || T
        ('age == 30 || name == "Tom" && age == 1', True),  # T || (F && F)
        ('(age == 30 || name == "Tom") && age == 1', False),
        ('age == 1 && (name == "Tom" || age == 30)', False),
        ('age == 30 && (name == "Tom" || age == 30)', True),
        # ! and parentheses
        ('!(name == "Alice")', False),
        ('!(name == "Tom")', True),
        ("!name.isNull()", True),
        ("!!name.isNull()", False),
        ("!(!(name.isNull()))", False),
        ('!(age == 30) || !(name == "Alice")', False),
        ('!(age == 30 && name == "Tom")', True),
        ('((((name == "Alice"))))', True),
        ("( age > 25 && department.isEmpty() )", True),
        ("(name.isEmpty() && department.notEmpty())", False),
        ("(department.notEmpty() || name.isEmpty())", False),
        ('(((age > 25 && name.notNull()) && email == "alice@example.com") || department.isEmpty())', True),
        ('((name == "x" || manager == null) && (email.contains("alice") || age == 1))', True),
        # whitespace anywhere between tokens
        ('\n\tage\t>=\n30 &&name=="Alice"  ', True),
    ],
)
def test_logic_precedence_and_negation(filter_string, expected):
    check(filter_string, expected)


def test_deep_and_long_filters_compile():
    deep = "a == 1"
    for i in range(31):  # each "!(" is two levels
        deep = f"!(b == {i} || {deep} && c.isNull())"
    attrs = {"a": 1, "b": 5, "c": None}
    compiled = Filter.compile(deep)
    assert compiled.matches(attrs) is interpret(compiled.tree, attrs)
    long = " || ".join(f"a == {i}" for i in range(2000)) + " && " + " && ".join(["b.notNull()"] * 2000)
    compiled = Filter.compile(long)
    assert compiled.matches({"a": 1999, "b": 1}) is True
    assert compiled.matches({"a": 1999}) is False
    assert compiled.matches({"a": 5}) is True


def test_logic_short_circuits():
    # The right side is not evaluated when the left decides; an unknown method there is harmless either way.
    check("age == 30 || missing.anything()", True)
    check("age == 1 && missing.anything()", False)


# ---------------------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_string, expected",
    [
        # isNull / notNull: null and "" are null; [] is not
        ("name.isNull()", False),
        ("manager.isNull()", True),
        ("department.isNull()", True),
        ("groups.isNull()", False),
        ("inactive.isNull()", False),
        ("name.notNull()", True),
        ("manager.notNull()", False),
        ("department.notNull()", False),
        ("groups.notNull()", True),
        # isEmpty / notEmpty: null, "", [] and {} are empty
        ("department.isEmpty()", True),
        ("manager.isEmpty()", True),
        ("groups.isEmpty()", True),
        ("meta.isEmpty()", True),
        ("name.isEmpty()", False),
        ("address.isEmpty()", False),
        ("age.isEmpty()", False),
        ("inactive.isEmpty()", False),
        ("department.notEmpty()", False),
        ("groups.notEmpty()", False),
        ("name.notEmpty()", True),
        ("address.notEmpty()", True),
        ("profile.notEmpty()", True),
        # startsWith / endsWith
        ('email.startsWith("alice")', True),
        ('email.startsWith("Alice")', False),
        ('email.startsWith("tom")', False),
        ('email.startsWith("")', True),
        ('email.endsWith("example.com")', True),
        ('email.endsWith("gmail.com")', False),
        ('address.startsWith("Pune")', False),  # not a string
        ('age.startsWith("3")', False),
        ("score.startsWith(4)", True),  # the argument converts to a string
        # contains on a string: substring
        ('email.contains("example")', True),
        ('email.contains("yahoo")', False),
        ('email.contains("")', True),
        ("score.contains(2)", True),
        # contains on a list: element (strict, SameValueZero)
        ('address.contains("Pune")', True),
        ('address.contains("Pun")', False),
        ('address.contains("pune")', False),
        ("ids.contains(2)", True),
        ("ids.contains(2.0)", True),
        ('ids.contains("2")', False),
        ("ids.contains(true)", False),
        ('age.contains("3")', False),  # not a string or list
        ('meta.contains("x")', False),
        # containsAll
        ('address.containsAll("Pune", "Austin")', True),
        ('address.containsAll("Pune","NY")', False),
        ('address.containsAll("Pune")', True),
        ("ids.containsAll(1, 3)", True),
        ("ids.containsAll(1, 4)", False),
        ('email.containsAll("alice", "example")', True),
        ('email.containsAll("alice", "bob")', False),
        ('groups.containsAll("x")', False),
        # IgnoreCase variants on strings
        ('email.startsWithIgnoreCase("Ali")', True),
        ('email.startsWithIgnoreCase("rit")', False),
        ('email.endsWithIgnoreCase(".Com")', True),
        ('email.endsWithIgnoreCase(".org")', False),
        ('email.containsIgnoreCase("Example")', True),
        ('email.containsIgnoreCase("google")', False),
        ('email.containsAllIgnoreCase("ALICE", "Example.COM")', True),
        ('email.containsAllIgnoreCase("ALICE", "bob")', False),
        ('address.startsWithIgnoreCase("pune")', False),
        # IgnoreCase variants on lists: some string element contains each argument
        ('address.containsAllIgnoreCase("pune", "Austin")', True),
        ('address.containsAllIgnoreCase("Pune", "NY")', False),
        ('tags.containsIgnoreCase("example")', True),
        ('tags.containsIgnoreCase("TEAMLEAD")', True),
        ('tags.containsIgnoreCase("developer@example.com")', True),
        ('tags.containsIgnoreCase("manager")', False),
        ('locations.containsAllIgnoreCase("hyderabad", "CHENNAI")', True),
        ('locations.containsAllIgnoreCase("Mumbai", "chennai")', True),
        ('locations.containsAllIgnoreCase("Hyderabad", "Delhi")', False),
        ('locations.containsAllIgnoreCase("Chennai")', True),
        ('ids.containsIgnoreCase("1")', False),  # only string elements
        # methods on dotted names
        ('profile.city.startsWith("Aus")', True),
        ('cost.center.endsWithIgnoreCase("cc-1")', True),
    ],
)
def test_methods(filter_string, expected):
    check(filter_string, expected)


def test_known_methods():
    assert KNOWN_METHODS == {
        "isNull",
        "notNull",
        "isEmpty",
        "notEmpty",
        "startsWith",
        "endsWith",
        "contains",
        "containsAll",
        "startsWithIgnoreCase",
        "endsWithIgnoreCase",
        "containsIgnoreCase",
        "containsAllIgnoreCase",
    }


def test_reference_example():
    # The example of SailPoint's filter documentation.
    obj = {"name": None, "login": "example-name", "address": ["line1", "line2", "line3"]}
    assert Filter(obj).matcher('(login == "example-name")') is True
    assert Filter(obj).matcher('address.containsAll("line1","line2")') is True
    assert Filter(obj).matcher("name != null") is False
    assert Filter(obj).matcher("name.isNull()") is True


# ---------------------------------------------------------------------------------------------------------
# Literals
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_string, attrs, expected",
    [
        ("s == 'single'", {"s": "single"}, True),
        (r's == "say \"hi\""', {"s": 'say "hi"'}, True),
        (r"s == 'it\'s'", {"s": "it's"}, True),
        (r's == "a\\b"', {"s": "a\\b"}, True),
        (r's == "tab\there"', {"s": "tab\there"}, True),
        (r's == "\u00e9\x41\u{1F600}"', {"s": "\u00e9A\U0001f600"}, True),
        ('s == "é"', {"s": "é"}, True),
        ("n == -2.5", {"n": -2.5}, True),
        ("n == +3", {"n": 3}, True),
        ("n == 1e21", {"n": 10**21}, True),
        ("n > 1e999", {"n": 1e308}, False),  # 1e999 is Infinity
        ("n == 0.1", {"n": 0.1}, True),
        ("b == true", {"b": True}, True),
        ("b == true", {"b": 1}, True),
        ("b === true", {"b": 1}, False),
        ("b == null", {"b": None}, True),
        ("$ref_1 == 1", {"$ref_1": 1}, True),
        ("ünïcode == 1", {"ünïcode": 1}, True),
    ],
)
def test_literals_and_names(filter_string, attrs, expected):
    check(filter_string, expected, attrs)


# ---------------------------------------------------------------------------------------------------------
# Malformed filters
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filter_string, position, fragment",
    [
        ("", 0, "empty filter"),
        ("   ", 0, "empty filter"),
        ('(name == "Alice"', 0, "unclosed '('"),
        ("(a == 1 && (b == 2)", 0, "unclosed '('"),
        ('name == "Alice")', 15, "unexpected ')'"),
        ('(department == "x"))', 19, "unexpected ')'"),
        ("()", 1, "unexpected ')'"),
        ("name ==", 7, "unexpected end of filter"),
        ("name == 1 &&", 12, "unexpected end of filter"),
        ("&& name == 1", 0, "unexpected '&&'"),
        ("name == 1 || || age == 2", 13, "unexpected '||'"),
        ("name == == 1", 8, "unexpected '=='"),
        ('name == "Alice', 8, "unterminated string"),
        ("name == 'x", 8, "unterminated string"),
        ('name == "a\\', 8, "unterminated string"),
        ('name == "line\nbreak"', 8, "unterminated string"),
        ("name", 4, "expected a comparison or a method call after 'name'"),
        ("(name)", 5, "expected a comparison or a method call"),
        ("true", 4, "expected a comparison or a method call"),
        ("name == 1 age == 2", 10, "unexpected name 'age'"),
        ("name = 1", 5, "unexpected '='"),
        ("name == 1 & age == 2", 10, "unexpected '&'"),
        ("name == 1 | age == 2", 10, "unexpected '|'"),
        ("name !== 1", 5, "unsupported operator '!=='"),
        ("name == 1 == 2", 10, "comparisons cannot be chained"),
        ("!name == 1", 0, "'!' applies to a parenthesised expression or a method call"),
        ("name.isNull() == true", 14, "unexpected '=='"),
        ("name == x.isNull()", 16, "a method call cannot be compared"),
        ("name.isNull(", 11, "unclosed '('"),
        ('name.contains("a"', 13, "unclosed '('"),
        ('name.contains("a" "b")', 18, "unexpected string"),
        ("name.contains(other)", 14, "method arguments are literals"),
        ("name.isNull(1)", 5, "isNull() takes no arguments, got 1"),
        ("name.startsWith()", 5, "startsWith() takes 1 argument, got 0"),
        ('name.contains("a", "b")', 5, "contains() takes 1 argument, got 2"),
        ("name.containsAll()", 5, "containsAll() takes at least 1 argument, got 0"),
        ('"x".startsWith("a")', 3, "a method is called on an attribute"),
        ("isNull()", 6, "a method is called on an attribute"),
        ("name.", 5, "expected a name after '.'"),
        ("name.1 == 2", 4, "unexpected number .1"),
        ('address.containsAll(["a"])', 20, "no list literals"),
        ('address.containsAll({"a"})', 20, "no list literals"),
        ("age == 12abc", 7, "malformed number"),
        ("age == 1.2.3", 7, "malformed number"),
        ("age # 1", 4, "unexpected '#'"),
        ("age == - 1", 7, "unexpected '-'"),
        (r'name == "\u12"', 9, "malformed \\u escape"),
        (r'name == "\xZZ"', 9, "malformed \\x escape"),
        ("(" * 150 + "a == 1" + ")" * 150, 64, "nested more than 64 levels deep"),
        ("!" * 70 + "a.isNull()", 64, "nested more than 64 levels deep"),
    ],
)
def test_malformed_filters(filter_string, position, fragment):
    with pytest.raises(FilterError) as info:
        Filter.compile(filter_string)
    err = info.value
    assert err.position == position, str(err)
    assert fragment in str(err)
    assert str(err).endswith(f" at position {position}")
    assert err.filter_string == filter_string
    assert isinstance(err, ValueError)
    with pytest.raises(FilterError):
        Filter({"name": "x"}).matcher(filter_string)


def test_filter_error_message_example():
    with pytest.raises(FilterError, match=r"^unexpected '\)' at position 14$"):
        Filter.compile('(dept == "En"))')


def test_filter_error_is_a_connector_error():
    from connectors.sdk.errors import ConnectorError

    assert issubclass(FilterError, ConnectorError)
    assert issubclass(FilterError, ValueError)


def test_non_string_filter_is_a_type_error():
    with pytest.raises(TypeError):
        Filter.compile(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Filter({}).matcher(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# validate()
# ---------------------------------------------------------------------------------------------------------

SCHEMA = ["name", "email", "department", "groups", "profile", "cost.center"]
SPEC_SCHEMA = [{"name": n, "type": "string"} for n in SCHEMA]


@pytest.mark.parametrize("schema", [SCHEMA, SPEC_SCHEMA, tuple(SCHEMA), set(SCHEMA), dict.fromkeys(SCHEMA)])
@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ('name == "x"', []),
        ('(department == "Eng" && email.endsWithIgnoreCase("@x.com")) || !(groups.isEmpty())', []),
        ('profile.city == "Austin"', []),  # a field of a dict attribute
        ("cost.center.notNull()", []),
        ('departmnt == "Eng"', ["departmnt"]),
        ('name.startWith("A")', ["startWith"]),
        (
            'departmnt == "Eng" || titel.startWith("A") || nme.contain("x")',
            ["departmnt", "titel", "nme", "startWith", "contain"],
        ),
        ("dept == 1 || dept == 2 || x.foo() || y.foo()", ["dept", "x", "y", "foo"]),
        ("name == email", []),
        ("name == mail", ["mail"]),
        ("1 == 1", []),
        ('name.Contains("x")', ["Contains"]),
    ],
)
def test_validate(filter_string, expected, schema):
    assert Filter.validate(filter_string, schema) == expected


def test_validate_raises_on_malformed_filter():
    with pytest.raises(FilterError, match="at position 12"):
        Filter.validate('name == "x" )', SCHEMA)


def test_validate_rejects_odd_schema_items():
    with pytest.raises(TypeError):
        Filter.validate("name == 1", [{"label": "name"}])


# ---------------------------------------------------------------------------------------------------------
# Compilation and caching
# ---------------------------------------------------------------------------------------------------------


def test_compile_is_cached():
    s = 'department == "cache-test" && title.startsWith("Senior")'
    first = Filter.compile(s)
    assert isinstance(first, CompiledFilter)
    assert Filter.compile(s) is first
    hits = _compile_cached.cache_info().hits
    assert Filter({"department": "cache-test", "title": "Senior Dev"}).matcher(s) is True
    assert Filter({"department": "cache-test", "title": "Dev"}).matcher(s) is False
    assert _compile_cached.cache_info().hits == hits + 2
    assert Filter.compile(s) is first


def test_compiled_filter_reuse_and_introspection():
    compiled = Filter.compile(
        '(department == "Engineering" && title.startsWith("Senior")) || !(location.isNull())'
    )
    assert compiled.attributes == ("department", "title", "location")
    assert compiled.methods == ("startsWith", "isNull")
    assert compiled.python.startswith("lambda a: ")
    assert compiled.matches({"department": "Engineering", "title": "Senior Dev", "location": None}) is True
    assert compiled.matches({"department": "Engineering", "title": "Dev", "location": None}) is False
    assert compiled.matches({"location": "Austin"}) is True
    assert compiled.matches({}) is True  # location is absent: isNull() is false, so !(...) is true
    assert compiled.matches({"location": ""}) is False
    assert repr(compiled).startswith("CompiledFilter(")


def test_generated_code_embeds_no_filter_text():
    # Literal text that looks like code stays a literal.
    nasty = "__import__('os').system('echo pwned')"
    s = f'name == "{nasty}" || name.contains("\\") or True or (")'
    compiled = Filter.compile(s)
    assert compiled.matches({"name": nasty}) is True
    assert compiled.matches({"name": "x"}) is False
    assert compiled.matches({"name": 'a") or True or ("b'}) is True


def test_attribute_mappings_other_than_dict():
    from types import MappingProxyType

    check('name == "Alice"', True, MappingProxyType(PERSON))


def test_connectors_sdk_filter_does_not_import_django():
    root = Path(__file__).resolve().parents[2]
    code = "import sys, connectors.sdk.filter; print(any(m.split('.')[0] == 'django' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------------------
# JavaScript value semantics (independent of the parser)
# ---------------------------------------------------------------------------------------------------------

U = UNDEFINED
NAN = math.nan


@pytest.mark.parametrize(
    "x, y, loose, strict",
    [
        (1, 1.0, True, True),
        ("1", 1, True, False),
        ("", 0, True, False),
        (" \n42\t", 42, True, False),
        ("0x1A", 26, True, False),
        ("1e3", 1000, True, False),
        ("Infinity", math.inf, True, False),
        ("inf", math.inf, False, False),
        ("1_000", 1000, False, False),
        (NAN, NAN, False, False),
        (None, U, True, False),
        (None, None, True, True),
        (U, U, True, True),
        (None, 0, False, False),
        (None, "", False, False),
        (U, False, False, False),
        (True, 1, True, False),
        (True, "1", True, False),
        (True, "true", False, False),
        (False, "", True, False),
        (False, "0", True, False),
        (False, [], True, False),
        ([], "", True, False),
        ([], 0, True, False),
        ([0], False, True, False),
        ([None], "", True, False),
        ([U, None], ",", True, False),
        ([[1, 2], 3], "1,2,3", True, False),
        ([1.5, True, "x"], "1.5,true,x", True, False),
        (["a"], "a", True, False),
        (["a"], ["a"], False, False),
        ({}, "[object Object]", True, False),
        ({}, {}, False, False),
        ("a", "a", True, True),
        ("a", "A", False, False),
    ],
)
def test_equality(x, y, loose, strict):
    assert loose_equals(x, y) is loose
    assert loose_equals(y, x) is loose
    assert strict_equals(x, y) is strict
    assert strict_equals(y, x) is strict


def test_identity_of_objects():
    a = [1]
    assert loose_equals(a, a) and strict_equals(a, a)


@pytest.mark.parametrize(
    "x, y, lt, le",
    [
        (1, 2, True, True),
        (2, 2, False, True),
        ("10", "9", True, True),  # strings compare as strings
        ("10", 9, False, False),  # otherwise as numbers
        ("b", "a", False, False),
        ("B", "a", True, True),
        ("a", 1, False, False),  # NaN: all false
        (1, "a", False, False),
        (U, 1, False, False),
        (None, 0, False, True),
        (None, 1, True, True),
        (False, True, True, True),
        ([2], 3, True, True),
        ([1, 2], 3, False, False),
        ([], 0, False, True),
        ("\U0001f600", "\uffff", True, True),  # UTF-16 code units, not code points
        ("\uffff", "\U0001f600", False, False),
        ("a\U0001f600", "a\uffff", True, True),
        (NAN, NAN, False, False),
        (-math.inf, 0, True, True),
    ],
)
def test_relational(x, y, lt, le):
    assert js_lt(x, y) is lt
    assert js_le(x, y) is le
    assert js_gt(y, x) is lt
    assert js_ge(y, x) is le


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0"),
        (-0.0, "0"),
        (100, "100"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (123.456, "123.456"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (10**21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.23e-10, "1.23e-10"),
        (0.1 + 0.2, "0.30000000000000004"),
        (2**53, "9007199254740992"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_number_to_string(n, text):
    assert _number_to_string(n) == text


@pytest.mark.parametrize(
    "text, n",
    [
        ("", 0),
        ("  ", 0),
        ("42", 42),
        (" +5 ", 5),
        ("-5", -5),
        ("1.", 1),
        (".5", 0.5),
        ("-1e-2", -0.01),
        ("0b101", 5),
        ("0o17", 15),
        ("0XfF", 255),
        ("-Infinity", -math.inf),
        ("\ufeff7\u00a0", 7),
        (".", NAN),
        ("5e", NAN),
        ("-0x10", NAN),
        ("0x", NAN),
        ("nan", NAN),
        ("1,000", NAN),
        ("\u0663", NAN),  # Arabic-Indic digit: not a JavaScript digit
    ],
)
def test_string_to_number(text, n):
    got = _string_to_number(text)
    if n != n:
        assert got != got
    else:
        assert got == n


# ---------------------------------------------------------------------------------------------------------
# The compiled form agrees with the tree-walking interpreter on random filters and objects
# ---------------------------------------------------------------------------------------------------------

NAMES = ["a", "b", "c", "d.e", "missing"]
STRING_LITERALS = [
    "x",
    "X",
    "",
    "1",
    " 2 ",
    "abc",
    "aBc",
    "1,2",
    "[object Object]",
    "true",
    "é",
    "\U0001f600",
    "\uffff",
]
OTHER_LITERALS = ["0", "1", "-1", "2.5", "1e21", "1e999", "true", "false", "null"]
METHODS = sorted(KNOWN_METHODS) + ["unknownMethod"]
VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2.5,
    math.nan,
    math.inf,
    10**21,
    "",
    "x",
    "X",
    "1",
    " 2 ",
    "abc",
    "ABC",
    "xabcx",
    "1,2",
    "true",
    "é",
    "\U0001f600",
    "\uffff",
    [],
    ["x"],
    ["X", "abc"],
    ["xabc", 1],
    [1, 2],
    [1],
    [None],
    [True],
    [2.5],
    {},
    {"k": 1},
]


def _random_literal(rng: random.Random) -> str:
    if rng.random() < 0.55:
        s = rng.choice(STRING_LITERALS)
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return rng.choice(OTHER_LITERALS)


def _random_clause(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        op = rng.choice(["==", "!=", "===", "<", ">", "<=", ">="])
        left, right = rng.choice(NAMES), _random_literal(rng)
        if rng.random() < 0.15:
            right = rng.choice(NAMES)
        if rng.random() < 0.2:
            left, right = right, left
        return f"{left} {op} {right}"
    method = rng.choice(METHODS)
    if method in ("isNull", "notNull", "isEmpty", "notEmpty"):
        args: list[str] = []
    elif method.startswith("containsAll") or method == "unknownMethod":
        args = [_random_literal(rng) for _ in range(rng.randint(1, 3))]
    else:
        args = [_random_literal(rng)]
    return f"{rng.choice(NAMES)}.{method}({', '.join(args)})"


def _random_filter(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return _random_clause(rng)
    if roll < 0.55:
        return f"!({_random_filter(rng, depth + 1)})"
    if roll < 0.65:
        return f"({_random_filter(rng, depth + 1)})"
    op = rng.choice(["&&", "||"])
    return f"{_random_filter(rng, depth + 1)} {op} {_random_filter(rng, depth + 1)}"


def _random_object(rng: random.Random) -> dict:
    obj = {}
    for name in ("a", "b", "c"):
        if rng.random() < 0.85:
            obj[name] = rng.choice(VALUES)
    roll = rng.random()
    if roll < 0.3:
        obj["d"] = {"e": rng.choice(VALUES)}
    elif roll < 0.6:
        obj["d.e"] = rng.choice(VALUES)
    elif roll < 0.7:
        obj["d"] = rng.choice(VALUES)
    return obj


def test_compiled_agrees_with_interpreter_on_random_filters():
    rng = random.Random(20240601)
    objects = [_random_object(rng) for _ in range(60)]
    checked = 0
    for _ in range(600):
        s = _random_filter(rng)
        compiled = Filter.compile(s)
        for obj in objects:
            fast, slow = compiled.matches(obj), interpret(compiled.tree, obj)
            assert isinstance(fast, bool)
            assert fast is slow, f"{s!r} on {obj!r}: compiled {fast}, interpreted {slow}\n{compiled.python}"
            checked += 1
    assert checked == 600 * 60


def test_every_value_kind_through_every_fast_path():
    # Each clause shape with each value, so no fast path misses a type.
    for op in ["==", "!=", "===", "<", ">", "<=", ">="]:
        for lit in STRING_LITERALS + OTHER_LITERALS:
            literal = '"' + lit + '"' if lit in STRING_LITERALS else lit
            for s in (f"a {op} {literal}", f"{literal} {op} a"):
                compiled = Filter.compile(s)
                for value in VALUES:
                    for obj in ({"a": value}, {}):
                        assert compiled.matches(obj) is interpret(compiled.tree, obj), (s, obj)
    for method in sorted(KNOWN_METHODS):
        for arg in ['"x"', '"ABC"', "1", "true", "null", '"1"']:
            if method in ("isNull", "notNull", "isEmpty", "notEmpty"):
                s = f"a.{method}()"
            else:
                s = f"a.{method}({arg})"
            compiled = Filter.compile(s)
            for value in VALUES:
                for obj in ({"a": value}, {}):
                    assert compiled.matches(obj) is interpret(compiled.tree, obj), (s, obj)

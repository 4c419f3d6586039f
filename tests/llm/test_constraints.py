import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swalab.llm.constraints import (
    Choice,
    Demand,
    NumberList,
    ParseError,
    Sentence,
    UnitScore,
    format_number,
    literal_charset,
)


def test_allowed_numbers_of_the_reference_grid():
    fmt = NumberList(k=7, x_max=10, resolution=0.25)
    assert len(fmt.allowed) == 41
    assert {"0", "0.25", "4.5", "9.75", "10"} <= set(fmt.allowed)
    assert sorted(float(a) for a in fmt.allowed) == [i * 0.25 for i in range(41)]


@given(st.lists(st.integers(0, 40), min_size=3, max_size=3), st.booleans())
def test_regex_parse_and_schema_agree(items, space):
    fmt = NumberList(k=3, x_max=10, resolution=0.25)
    text = (" " if space else "") + "[" + ", ".join(format_number(i * 0.25) for i in items) + "]"
    assert re.fullmatch(fmt.regex(), text)
    assert fmt.parse(text) == [i * 0.25 for i in items]
    assert all(x in fmt.json_schema()["items"]["enum"] for x in json.loads(text))


def test_gbnf_spells_exactly_k_items_and_every_literal():
    fmt = NumberList(k=3, x_max=2, resolution=0.5)
    assert fmt.gbnf() == (
        'root ::= " "? "[" num ", " num ", " num "]"\nnum ::= "0.5" | "1.5" | "0" | "1" | "2"\n'
    )
    assert not re.fullmatch(fmt.regex(), "[1, 2]")
    assert not re.fullmatch(fmt.regex(), "[1, 2, 2.5]")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no list here", "no JSON list"),
        ("[1, 2,]", "not valid JSON"),
        ('[1, "a", 3]', "non-numbers"),
        ("[1, 2]", "expected 3 numbers, got 2"),
        ("[1, 12, -1]", "out of range"),
    ],
)
def test_parse_errors_name_the_problem(text, message):
    with pytest.raises(ParseError, match=message):
        NumberList(k=3, x_max=10).parse(text)


def test_off_grid_numbers_in_range_are_accepted():
    assert NumberList(k=2, x_max=10).parse("[3.3, 7]") == [3.3, 7.0]


def test_choice():
    c = Choice(options=12)
    assert c.parse(" 12") == 12
    assert re.fullmatch(c.regex(), " 10") and not re.fullmatch(c.regex(), "13")
    with pytest.raises(ParseError, match="does not exist"):
        c.parse("13")
    with pytest.raises(ParseError, match="no row number"):
        c.parse("the best")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"k": 0, "x_max": 10}, "k=0"),
        ({"k": 2, "x_max": -1}, "x_max=-1"),
        ({"k": 2, "x_max": 10, "resolution": 1e-4}, "resolution"),
    ],
)
def test_bad_formats_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        NumberList(**kwargs)


@given(st.integers(0, 40), st.booleans())
def test_demand_regex_parse_and_schema_agree(i, space):
    fmt = Demand(x_max=10, resolution=0.25)
    text = (" " if space else "") + format_number(i * 0.25)
    assert re.fullmatch(fmt.regex(), text)
    assert fmt.parse(text) == i * 0.25
    assert i * 0.25 in fmt.json_schema()["enum"]


def test_demand_gbnf_and_errors():
    fmt = Demand(x_max=2, resolution=0.5)
    assert fmt.gbnf() == 'root ::= " "? num\nnum ::= "0.5" | "1.5" | "0" | "1" | "2"\n'
    assert fmt.parse("I take 1.5 units") == 1.5
    assert not re.fullmatch(fmt.regex(), "2.5")
    with pytest.raises(ParseError, match="no number"):
        fmt.parse("a lot")
    with pytest.raises(ParseError, match="out of range"):
        fmt.parse("-1")
    with pytest.raises(ValueError, match="resolution"):
        Demand(x_max=10, resolution=1e-4)


@pytest.mark.parametrize(
    ("fmt", "chars"),
    [
        (NumberList(k=3, x_max=10), " ,.0123456789[]"),
        (Demand(x_max=2, resolution=0.5), " .0125"),
        (Choice(options=3), " 123"),
        (UnitScore(resolution=0.5), ' "01.5:{}cores'),
    ],
)
def test_literal_charset_is_every_character_the_format_can_write(fmt, chars):
    got = literal_charset(fmt.gbnf())
    assert got == frozenset(chars)
    # independent truth: what the format's regex accepts is spelled with those characters
    for text in [" [0, 10, 9.5]", "[1.5, 2, 0]", " 1.5", "2", " 3", '{"score": 0.5}']:
        if re.fullmatch(fmt.regex(), text):
            assert set(text) <= got


@pytest.mark.parametrize(
    "gbnf",
    [
        Sentence().gbnf(),  # a character class
        'root ::= "a" .\n',  # any character
        'root ::= "a\\n"\n',  # an escape the alphabet cannot trust
        'root ::= "abc\n',  # an unterminated literal
    ],
)
def test_literal_charset_is_open_for_anything_but_literals(gbnf):
    assert literal_charset(gbnf) is None


def test_literal_charset_reads_escapes_and_skips_comments():
    assert literal_charset('# any "x" here\nroot ::= "\\"q\\\\" ("a" | "b")*\n') == frozenset(
        '"q\\ab'
    )

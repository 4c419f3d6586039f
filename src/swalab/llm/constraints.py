"""Output formats: what a completion must look like, as a grammar, a JSON schema and a parser.

One object describes the format to every backend: llama.cpp enforces the GBNF grammar,
OpenAI-compatible servers take the grammar (llama.cpp server) or the JSON schema (vLLM,
hosted APIs), transformers checks prefixes against the regular expression while decoding.
Whatever the backend enforced, the same :meth:`OutputFormat.parse` decides what the text
means, so an unenforced format degrades to recorded parse errors, never to guesses.

Number ranges are enforced by enumerating the allowed numbers (a grid of ``resolution``)
as literals: llama-cpp-python's JSON-schema grammar ignores ``minimum``/``maximum`` but
honours ``enum``, and a literal alternation is exact in every grammar dialect.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from swalab import _validate as v

#: Grids longer than this are not spelled out as literals.
MAX_LITERALS = 4001


class ParseError(ValueError):
    """A completion does not have the required format."""


class OutputFormat(Protocol):
    """A constrained output format."""

    @property
    def name(self) -> str:
        """Short identifier, part of the response-cache key."""
        ...

    def gbnf(self) -> str:
        """The format as a llama.cpp GBNF grammar (root rule ``root``)."""
        ...

    def json_schema(self) -> dict[str, Any]:
        """The format as a JSON schema."""
        ...

    def regex(self) -> str:
        """The format as a Python regular expression over the whole completion."""
        ...

    def parse(self, text: str) -> Any:
        """Return the value the text encodes; raise :class:`ParseError` otherwise."""
        ...


def format_number(x: float) -> str:
    """Shortest decimal spelling of a grid value: ``4``, ``4.5``, ``4.25``."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def literal_charset(gbnf: str) -> frozenset[str] | None:
    """Every character a grammar made only of string literals can produce, else ``None``.

    A backend that knows this alphabet needs the scores of only the tokens spelled with it:
    no other token can ever satisfy the grammar. A character class (``[a-z]``), an any-char
    ``.`` or an escape other than an escaped backslash or quote makes the alphabet open
    (``None``).
    """
    chars: set[str] = set()
    i, n = 0, len(gbnf)
    while i < n:
        c = gbnf[i]
        if c == "#":  # a comment runs to the end of the line
            end = gbnf.find("\n", i)
            i = n if end < 0 else end
        elif c == '"':
            i += 1
            while i < n and gbnf[i] != '"':
                if gbnf[i] == "\\":
                    if i + 1 >= n or gbnf[i + 1] not in '\\"':
                        return None
                    i += 1
                chars.add(gbnf[i])
                i += 1
            if i >= n:
                return None  # an unterminated literal: not a grammar to trust
            i += 1
        elif c in "[.":
            return None
        else:
            i += 1
    return frozenset(chars)


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, kw_only=True)
class NumberList:
    """A JSON list of exactly ``k`` numbers from ``0, resolution, …, x_max``.

    Attributes:
        k: Numbers in the list.
        x_max: Largest allowed number.
        resolution: Spacing of the allowed numbers.
    """

    k: int
    x_max: float
    resolution: float = 0.25

    def __post_init__(self) -> None:
        v.integer_at_least("k", self.k, 1)
        v.positive("x_max", self.x_max)
        v.positive("resolution", self.resolution)
        if self.x_max / self.resolution + 1 > MAX_LITERALS:
            raise ValueError(
                f"resolution={self.resolution} is out of range: x_max / resolution must be "
                f"< {MAX_LITERALS - 1} so the allowed numbers can be enumerated"
            )

    @property
    def name(self) -> str:
        """E.g. ``numbers(k=7,max=10,res=0.25)``."""
        return f"numbers(k={self.k},max={self.x_max:g},res={self.resolution:g})"

    @cached_property
    def allowed(self) -> list[str]:
        """The allowed numbers as spelled in the output, longest spelling first."""
        n = math.floor(self.x_max / self.resolution + 1e-9) + 1
        values = [format_number(min(i * self.resolution, self.x_max)) for i in range(n)]
        # Longest first so that regex alternation prefers "10" over "1".
        return sorted(dict.fromkeys(values), key=lambda s: (-len(s), s))

    def gbnf(self) -> str:
        """``root ::= " "? "[" num (", " num)* "]"`` with exactly ``k`` numbers.

        The optional leading space lets prompts end in ``:`` (a trailing space in a prompt
        is a token base models rarely saw there).
        """
        items = ' ", " '.join(["num"] * self.k)
        nums = " | ".join(_gbnf_literal(s) for s in self.allowed)
        return f'root ::= " "? "[" {items} "]"\nnum ::= {nums}\n'

    def json_schema(self) -> dict[str, Any]:
        """An array of ``k`` items from an ``enum`` of the allowed numbers."""
        enum = sorted({float(s) for s in self.allowed})
        return {
            "type": "array",
            "items": {"type": "number", "enum": enum},
            "minItems": self.k,
            "maxItems": self.k,
        }

    def regex(self) -> str:
        """Whole-completion regular expression of the format."""
        num = "(?:" + "|".join(re.escape(s) for s in self.allowed) + ")"
        return r" ?\[" + r", ".join([num] * self.k) + r"\]"

    def parse(self, text: str) -> list[float]:
        """Read the first JSON list in ``text``; it must hold ``k`` numbers in range.

        Numbers off the grid but inside ``[0, x_max]`` are accepted (an unconstrained
        server may propose 3.3); anything else is a :class:`ParseError` naming the problem.
        """
        start = text.find("[")
        end = text.find("]", start + 1)
        if start < 0 or end < 0:
            raise ParseError(f"no JSON list in the answer: {text[:80]!r}")
        try:
            items = json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            raise ParseError(f"the list is not valid JSON ({exc.msg}): {text[:80]!r}") from None
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in items):
            raise ParseError(f"the list holds non-numbers: {text[start : end + 1][:80]!r}")
        if len(items) != self.k:
            raise ParseError(f"expected {self.k} numbers, got {len(items)}")
        bad = [x for x in items if not (0.0 <= x <= self.x_max)]
        if bad:
            raise ParseError(f"numbers out of range [0, {self.x_max:g}]: {bad}")
        return [float(x) for x in items]


@dataclass(frozen=True, kw_only=True)
class Demand:
    """One number from ``0, resolution, …, x_max``: a demand answered directly.

    Attributes:
        x_max: Largest allowed number.
        resolution: Spacing of the allowed numbers.
    """

    x_max: float
    resolution: float = 0.25

    def __post_init__(self) -> None:
        NumberList(k=1, x_max=self.x_max, resolution=self.resolution)  # same limits

    @property
    def name(self) -> str:
        """E.g. ``demand(max=10,res=0.25)``."""
        return f"demand(max={self.x_max:g},res={self.resolution:g})"

    @cached_property
    def allowed(self) -> list[str]:
        """The allowed numbers as spelled, longest first."""
        return NumberList(k=1, x_max=self.x_max, resolution=self.resolution).allowed

    def gbnf(self) -> str:
        """``root ::= " "? num``."""
        nums = " | ".join(_gbnf_literal(s) for s in self.allowed)
        return f'root ::= " "? num\nnum ::= {nums}\n'

    def json_schema(self) -> dict[str, Any]:
        """A number from an ``enum`` of the allowed numbers."""
        return {"type": "number", "enum": sorted({float(s) for s in self.allowed})}

    def regex(self) -> str:
        """Whole-completion regular expression of the format."""
        return " ?(?:" + "|".join(re.escape(s) for s in self.allowed) + ")"

    def parse(self, text: str) -> float:
        """Read the first number in ``text``; it must lie in ``[0, x_max]``.

        Off-grid numbers inside the range are accepted (an unconstrained server may answer
        3.3), as :meth:`NumberList.parse` accepts them.
        """
        match = re.search(r"-?\d+(?:\.\d+)?", text)
        if match is None:
            raise ParseError(f"no number in the answer: {text[:80]!r}")
        x = float(match.group())
        if not 0.0 <= x <= self.x_max:
            raise ParseError(f"number {match.group()} is out of range [0, {self.x_max:g}]")
        return x


@dataclass(frozen=True, kw_only=True)
class Choice:
    """One whole number from ``1`` to ``options`` (a row of a table).

    Attributes:
        options: Number of rows to choose from.
    """

    options: int

    def __post_init__(self) -> None:
        v.integer_at_least("options", self.options, 1)

    @property
    def name(self) -> str:
        """E.g. ``choice(12)``."""
        return f"choice({self.options})"

    def _literals(self) -> list[str]:
        return sorted((str(i) for i in range(1, self.options + 1)), key=lambda s: (-len(s), s))

    def gbnf(self) -> str:
        """``root ::= " "? ("1" | "2" | …)``."""
        alts = " | ".join(_gbnf_literal(s) for s in self._literals())
        return f'root ::= " "? ({alts})\n'

    def json_schema(self) -> dict[str, Any]:
        """An integer between 1 and ``options``."""
        return {"type": "integer", "enum": list(range(1, self.options + 1))}

    def regex(self) -> str:
        """Whole-completion regular expression of the format."""
        return " ?(?:" + "|".join(self._literals()) + ")"

    def parse(self, text: str) -> int:
        """Read the first whole number in ``text``; it must name an existing row."""
        match = re.search(r"\d+", text)
        if match is None:
            raise ParseError(f"no row number in the answer: {text[:80]!r}")
        row = int(match.group())
        if not 1 <= row <= self.options:
            raise ParseError(f"row {row} does not exist: choose 1..{self.options}")
        return row


@dataclass(frozen=True, kw_only=True)
class UnitScore:
    """A JSON object ``{"score": s}`` with ``s`` in ``0, resolution, …, 1`` (a judge's grade).

    Attributes:
        resolution: Spacing of the allowed scores.
    """

    resolution: float = 0.05

    def __post_init__(self) -> None:
        v.in_range("resolution", self.resolution, 1e-3, 1.0)

    @property
    def name(self) -> str:
        """E.g. ``score(res=0.05)``."""
        return f"score(res={self.resolution:g})"

    @cached_property
    def allowed(self) -> list[str]:
        """The allowed scores as spelled, longest first."""
        n = math.floor(1.0 / self.resolution + 1e-9) + 1
        values = [format_number(min(round(i * self.resolution, 6), 1.0)) for i in range(n)]
        return sorted(dict.fromkeys([*values, "1"]), key=lambda s: (-len(s), s))

    def gbnf(self) -> str:
        """A literal ``{"score": `` then one allowed number then ``}``."""
        nums = " | ".join(_gbnf_literal(s) for s in self.allowed)
        return f'root ::= " "? "{{\\"score\\": " num "}}"\nnum ::= {nums}\n'

    def json_schema(self) -> dict[str, Any]:
        """An object with one required number from the allowed scores."""
        enum = sorted({float(s) for s in self.allowed})
        return {
            "type": "object",
            "properties": {"score": {"type": "number", "enum": enum}},
            "required": ["score"],
            "additionalProperties": False,
        }

    def regex(self) -> str:
        """Whole-completion regular expression of the format."""
        num = "(?:" + "|".join(re.escape(s) for s in self.allowed) + ")"
        return r' ?\{"score": ' + num + r"\}"

    def parse(self, text: str) -> float:
        """Read the first JSON object in ``text``; its ``score`` must lie in [0, 1]."""
        start, end = text.find("{"), text.find("}")
        if start < 0 or end < start:
            raise ParseError(f"no JSON object in the answer: {text[:80]!r}")
        try:
            data = json.loads(text[start : end + 1])
        except json.JSONDecodeError as exc:
            raise ParseError(f"the object is not valid JSON ({exc.msg}): {text[:80]!r}") from None
        score = data.get("score") if isinstance(data, dict) else None
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise ParseError(f"the object has no numeric score: {text[start : end + 1][:80]!r}")
        if not 0.0 <= score <= 1.0:
            raise ParseError(f"score {score} is out of range [0, 1]")
        return float(score)


#: Characters a :class:`Sentence` may hold after its first (a letter or digit).
SENTENCE_CHARS = "A-Za-z0-9 ,.;:'()%+/-"


@dataclass(frozen=True, kw_only=True)
class Sentence:
    """One line of plain text, at most ``max_chars`` characters (an agent's stance).

    The grammar bounds the length and keeps the text on one line of plain characters, so a
    rewritten stance can never grow without limit or smuggle in a new prompt section.
    Unenforced text (a server without the grammar) is read as its first non-empty line,
    cut at the last word boundary within the limit.

    Attributes:
        max_chars: Most characters.
    """

    max_chars: int = 160

    def __post_init__(self) -> None:
        v.integer_at_least("max_chars", self.max_chars, 8)

    @property
    def name(self) -> str:
        """E.g. ``sentence(160)``."""
        return f"sentence({self.max_chars})"

    def gbnf(self) -> str:
        """A letter or digit, then up to ``max_chars − 1`` plain characters."""
        return f'root ::= " "? [A-Za-z0-9] [{SENTENCE_CHARS}]{{0,{self.max_chars - 1}}}\n'

    def json_schema(self) -> dict[str, Any]:
        """A string of bounded length over the same characters."""
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": self.max_chars,
            "pattern": f"^[A-Za-z0-9][{SENTENCE_CHARS}]*$",
        }

    def regex(self) -> str:
        """Whole-completion regular expression of the format."""
        return f" ?[A-Za-z0-9][{SENTENCE_CHARS}]{{0,{self.max_chars - 1}}}"

    def parse(self, text: str) -> str:
        """The first non-empty line, stripped and cut to ``max_chars`` at a word boundary."""
        line = next((s.strip() for s in text.splitlines() if s.strip()), "")
        line = line.strip("\"'` ")
        if not line:
            raise ParseError(f"no text in the answer: {text[:80]!r}")
        if len(line) > self.max_chars:
            cut = line[: self.max_chars]
            line = cut.rsplit(" ", 1)[0] if " " in cut else cut
        return line

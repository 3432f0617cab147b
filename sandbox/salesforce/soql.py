"""A real tokenizer and recursive-descent parser for the SOQL subset leadsync and its tests use.

Supported: SELECT fields (dotted relationship paths) or COUNT(), FROM, WHERE with
AND / OR / NOT and parentheses, = != <> < <= > >=, IN / NOT IN, LIKE, null,
true / false, numbers, quoted strings, date and date-time literals; ORDER BY
(several keys, ASC / DESC, NULLS FIRST / LAST); LIMIT; OFFSET.

Like real SOQL, AND and OR cannot be mixed at one level without parentheses.
Errors carry the 1-based row/column of the offending token so the API layer can
render Salesforce's caret message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
     "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "COUNT"}
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(Exception):
    """A query Salesforce would refuse; `code` is the API errorCode, `pos` the character offset."""

    def __init__(self, code: str, message: str, pos: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string datetime date number ident op punct eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.upper in words


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # string number datetime date boolean null
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class FieldRef:
    path: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Compare:
    field: FieldRef
    op: str  # = != < <= > >= LIKE
    value: Literal


@dataclass(frozen=True, slots=True)
class InList:
    field: FieldRef
    values: tuple[Literal, ...]
    negate: bool


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # AND / OR
    items: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Cond


Cond = Compare | InList | BoolOp | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass(frozen=True, slots=True)
class Query:
    fields: tuple[FieldRef, ...]
    count: bool
    sobject: str
    sobject_pos: int
    where: Cond | None
    order: tuple[OrderKey, ...]
    limit: int | None
    offset: int | None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos]}'", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


def unquote(raw: str) -> str:
    """Resolve SOQL escapes; `\\%` and `\\_` stay escaped for LIKE to interpret."""
    out: list[str] = []
    body = raw[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_datetime(text: str) -> datetime:
    """SOQL date-time literal (Z, +hh:mm or +hhmm offsets) as an aware UTC datetime."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text).astimezone(timezone.utc)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{tok.text}'", tok.pos)

    def expect_kw(self, word: str) -> Token:
        if not self.tok.is_kw(word):
            raise self.fail()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if self.tok.kind != "punct" or self.tok.text != ch:
            raise self.fail()
        return self.advance()

    def parse(self) -> Query:
        self.expect_kw("SELECT")
        count, fields = self.select_list()
        self.expect_kw("FROM")
        obj = self.tok
        if obj.kind != "ident" or obj.upper in KEYWORDS or "." in obj.text:
            raise self.fail()
        self.advance()
        where = self.condition() if self.tok.is_kw("WHERE") and self.advance() else None
        order: tuple[OrderKey, ...] = ()
        if self.tok.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            order = self.order_list()
        limit = self.int_clause("LIMIT")
        offset = self.int_clause("OFFSET")
        if self.tok.kind != "eof":
            raise self.fail()
        return Query(fields, count, obj.text, obj.pos, where, order, limit, offset)

    def select_list(self) -> tuple[bool, tuple[FieldRef, ...]]:
        if self.tok.is_kw("COUNT") and self.tokens[self.i + 1].text == "(":
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            return True, ()
        fields = [self.field_ref()]
        while self.tok.text == ",":
            self.advance()
            fields.append(self.field_ref())
        return False, tuple(fields)

    def field_ref(self) -> FieldRef:
        tok = self.tok
        if tok.kind != "ident" or tok.upper in KEYWORDS:
            raise self.fail()
        self.advance()
        return FieldRef(tuple(tok.text.split(".")), tok.pos)

    def int_clause(self, word: str) -> int | None:
        if not self.tok.is_kw(word):
            return None
        self.advance()
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.fail()
        self.advance()
        return int(tok.text)

    def order_list(self) -> tuple[OrderKey, ...]:
        keys = []
        while True:
            ref = self.field_ref()
            desc = False
            if self.tok.is_kw("ASC", "DESC"):
                desc = self.advance().upper == "DESC"
            nulls_last = desc
            if self.tok.is_kw("NULLS"):
                self.advance()
                if not self.tok.is_kw("FIRST", "LAST"):
                    raise self.fail()
                nulls_last = self.advance().upper == "LAST"
            keys.append(OrderKey(ref, desc, nulls_last))
            if self.tok.text != ",":
                return tuple(keys)
            self.advance()

    def condition(self) -> Cond:
        """One level of AND or OR (never both, as in SOQL) over unary terms."""
        items = [self.unary()]
        joiner: str | None = None
        while self.tok.is_kw("AND", "OR"):
            word = self.tok.upper
            if joiner is not None and word != joiner:
                raise self.fail()
            joiner = word
            self.advance()
            items.append(self.unary())
        return items[0] if joiner is None else BoolOp(joiner, tuple(items))

    def unary(self) -> Cond:
        if self.tok.is_kw("NOT"):
            self.advance()
            return Not(self.unary())
        if self.tok.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.predicate()

    def predicate(self) -> Cond:
        ref = self.field_ref()
        if self.tok.is_kw("NOT") and self.tokens[self.i + 1].is_kw("IN"):
            self.advance()
            self.advance()
            return InList(ref, self.value_list(), True)
        if self.tok.is_kw("IN"):
            self.advance()
            return InList(ref, self.value_list(), False)
        if self.tok.is_kw("LIKE"):
            self.advance()
            value = self.literal()
            if value.kind != "string":
                raise self.fail(self.tokens[self.i - 1])
            return Compare(ref, "LIKE", value)
        if self.tok.kind != "op":
            raise self.fail()
        op = self.advance().text
        return Compare(ref, "!=" if op == "<>" else op, self.literal())

    def value_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        values = [self.literal()]
        while self.tok.text == ",":
            self.advance()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self) -> Literal:
        tok = self.advance()
        if tok.kind == "string":
            return Literal("string", unquote(tok.text), tok.pos)
        if tok.kind == "number":
            return Literal("number", float(tok.text) if "." in tok.text else int(tok.text), tok.pos)
        if tok.kind == "datetime":
            return Literal("datetime", parse_datetime(tok.text), tok.pos)
        if tok.kind == "date":
            return Literal("date", date.fromisoformat(tok.text), tok.pos)
        if tok.is_kw("TRUE", "FALSE"):
            return Literal("boolean", tok.upper == "TRUE", tok.pos)
        if tok.is_kw("NULL"):
            return Literal("null", None, tok.pos)
        raise self.fail(tok)


def parse(text: str) -> Query:
    """Parse one SOQL statement or raise `SoqlError` pointing at the offending token."""
    return _Parser(text).parse()


def caret_message(text: str, err: SoqlError) -> str:
    """Salesforce's error text: the query line, a caret under the column, the row/column, the reason."""
    before = text[: err.pos]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    line_end = text.find("\n", err.pos)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    col = err.pos - line_start + 1
    return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{err.message}"

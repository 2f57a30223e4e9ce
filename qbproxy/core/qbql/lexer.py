"""Tokens of a QBO query: words, numbers, single-quoted strings and operators.

Anything the lexer does not recognise makes the query unsupported (it is then forwarded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

from qbproxy.core.qbql.ast import QueryNotSupported

TokenKind: TypeAlias = Literal["word", "number", "string", "symbol", "end"]

MAX_QUERY_CHARS = 100_000

_TOKEN = re.compile(
    r"""
      (?P<ws>[ \t\r\n\f\v]+)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?![A-Za-z0-9_.])
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?)(?![A-Za-z0-9_.])
    | (?P<string>'(?:[^'\\]|\\['\\])*')
    | (?P<symbol><=|>=|[=<>*(),])
    | (?P<refused><>|!=|;|'|"|\\)
    """,
    re.VERBOSE,
)

# Intuit escapes an apostrophe as \' (qbo-api.md "Query language"); we also take \\ for a
# backslash. Any other backslash sequence has no known meaning there, so the lexer refuses it.
_ESCAPE = re.compile(r"\\(['\\])")

_REFUSED_REASON = {
    "<>": "the query uses a not-equal operator",
    "!=": "the query uses a not-equal operator",
    ";": "the query has a semicolon",
    "'": "the query has an unterminated string or an unknown escape",
    '"': "the query has a double-quoted string",
    "\\": "the query has a backslash outside a string",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # words and symbols as written; strings unescaped; numbers as written
    pos: int


def tokenize(text: str) -> list[Token]:
    """The query's tokens ending with an `end` token; raises QueryNotSupported."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryNotSupported("the query text is too long")
    if "\x00" in text:
        raise QueryNotSupported("the query contains a NUL character")
    try:
        # Lone surrogates cannot be sent to Postgres as text.
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryNotSupported("the query is not valid Unicode") from None
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise QueryNotSupported(f"unexpected character at offset {pos}")
        kind = m.lastgroup
        lexeme = m.group()
        if kind == "refused":
            raise QueryNotSupported(_REFUSED_REASON[lexeme])
        if kind == "string":
            tokens.append(Token("string", _ESCAPE.sub(r"\1", lexeme[1:-1]), pos))
        elif kind == "word":
            tokens.append(Token("word", lexeme, pos))
        elif kind == "number":
            tokens.append(Token("number", lexeme, pos))
        elif kind == "symbol":
            tokens.append(Token("symbol", lexeme, pos))
        pos = m.end()
    tokens.append(Token("end", "", pos))
    return tokens


def quote(value: str) -> str:
    """A string literal as Intuit's language writes it: backslash escapes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

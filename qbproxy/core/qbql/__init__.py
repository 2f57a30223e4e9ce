"""qbql: Intuit's query language compiled to SQL over the cache tables (pure, no I/O).

`compile_query(text)` returns a `Plan` or, for anything not answered exactly as Intuit
would answer it, `Unsupported` (the query is then forwarded).
"""

from qbproxy.core.qbql.ast import Query, Unsupported
from qbproxy.core.qbql.parser import parse, render
from qbproxy.core.qbql.plan import Plan, compile_query

__all__ = ["Plan", "Query", "Unsupported", "compile_query", "parse", "render"]

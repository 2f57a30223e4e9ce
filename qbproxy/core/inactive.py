"""Learning, from Intuit's own answers, whether `SELECT *` on a name list hides inactive
rows (pure).

qbo-api.md confirms it for Customer only. For the other name lists the cache answers a
plain `SELECT *` (no condition on Active) only when both rules give the same answer
(qbproxy.core.qbql.plan: `inactive_probe`); otherwise it forwards, and compares Intuit's
answer with the two answers its own complete table gives: the rows with `Active = true`
("hidden") and all rows ("shown"). When the two differ and Intuit's equals exactly one of
them, that is Intuit's rule for the entity, and later queries are answered by it. When
unsure (equal candidates, or Intuit's answer matches neither, as when the table is behind
a change made in QBO), nothing is learned and the next such query is forwarded again.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

Rule = Literal["hidden", "shown"]


def _shape(entity: str, response: Any) -> tuple[object, ...] | None:
    """What the rules can change in a QueryResponse: the count, or the Ids in order."""
    if not isinstance(response, dict):
        return None
    if "totalCount" in response:
        return ("count", response["totalCount"])
    rows = response.get(entity, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    return ("rows", *(r.get("Id") for r in rows))


def learn(entity: str, intuit_body: bytes, hidden: bytes, shown: bytes) -> Rule | None:
    """Intuit's rule, from its 200 answer to a query and the cache's two candidate
    `QueryResponse` fragments for it; None when they do not tell."""
    try:
        answer = orjson.loads(intuit_body)
        candidates = (orjson.loads(hidden), orjson.loads(shown))
    except orjson.JSONDecodeError:
        return None
    got = _shape(entity, answer.get("QueryResponse") if isinstance(answer, dict) else None)
    if_hidden, if_shown = (_shape(entity, c) for c in candidates)
    if got is None or if_hidden is None or if_shown is None or if_hidden == if_shown:
        return None
    if got == if_hidden:
        return "hidden"
    if got == if_shown:
        return "shown"
    return None

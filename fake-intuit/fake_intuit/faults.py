"""The call log and fault injection: one-shot failures, throttles, cut streams, and gates
that hold matching requests until a test releases them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# "report": GET reports/{Name} (entity: the report's name). CompanyInfo and Preferences
# reads are "read" (entity "CompanyInfo" / "Preferences").
CallKind = Literal["query", "read", "write", "batch", "cdc", "report", "other"]
Stage = Literal["before", "after"]


@dataclass(slots=True)
class Call:
    """One /v3 request as the fake received it. `status` is None while it is in flight."""

    method: str
    path: str
    query_string: str
    realm: str
    kind: CallKind
    entity: str | None  # canonical ("Customer"), None when the request names none
    query: str | None  # the query text, for kind == "query"
    started_ns: int  # time.monotonic_ns(), comparable with Sandbox.history
    status: int | None = None
    finished_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """Which requests a fault or gate applies to; None fields match anything. `query` is a
    case-insensitive substring of the query text; `where` a last free-form predicate."""

    kind: CallKind | None = None
    entity: str | None = None
    realm: str | None = None
    method: str | None = None
    query: str | None = None
    where: Callable[[Call], bool] | None = None

    def __call__(self, call: Call) -> bool:
        return (
            (self.kind is None or call.kind == self.kind)
            and (self.entity is None or (call.entity or "").lower() == self.entity.lower())
            and (self.realm is None or call.realm == self.realm)
            and (self.method is None or call.method == self.method.upper())
            and (self.query is None or self.query.lower() in (call.query or "").lower())
            and (self.where is None or self.where(call))
        )


@dataclass(slots=True)
class Rule:
    """A one-shot fault for the next `remaining` matching requests."""

    action: Literal["fail", "throttle", "kill"]
    match: Match
    remaining: int
    status: int = 500


@dataclass(eq=False, slots=True)
class Gate:
    """Holds matching requests until `release()`.

    stage "after" computes the answer first and holds it before sending (a response that
    raced a write arrives with pre-write data); "before" holds before the fake looks at
    the request. `remaining` None holds every match until released. `arrived` is set when
    the first request is held; `calls` lists the held requests.
    """

    match: Match
    stage: Stage = "after"
    remaining: int | None = 1
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[Call] = field(default_factory=list)

    def takes(self, call: Call, stage: Stage) -> bool:
        if self.released.is_set() or stage != self.stage or self.remaining == 0:
            return False
        if not self.match(call):
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True

    async def hold(self, call: Call) -> None:
        self.calls.append(call)
        self.arrived.set()
        await self.released.wait()

    def release(self) -> None:
        self.released.set()

    async def wait_arrived(self, within_s: float = 10.0) -> Call:
        """The first held request, once one is held (TimeoutError after `within_s`)."""
        await asyncio.wait_for(self.arrived.wait(), within_s)
        return self.calls[0]


class Faults:
    """The fault-injection surface; `Sandbox` exposes it as methods."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.gates: list[Gate] = []

    def add(
        self, action: Literal["fail", "throttle", "kill"], n: int, match: Match, status: int = 500
    ) -> Rule:
        rule = Rule(action, match, n, status)
        self.rules.append(rule)
        return rule

    def take(self, call: Call) -> Rule | None:
        for rule in self.rules:
            if rule.remaining > 0 and rule.match(call):
                rule.remaining -= 1
                return rule
        self.rules = [r for r in self.rules if r.remaining > 0]
        return None

    def gate(self, match: Match, stage: Stage, times: int | None) -> Gate:
        gate = Gate(match, stage, times)
        self.gates.append(gate)
        return gate

    async def pass_gates(self, call: Call, stage: Stage) -> None:
        for gate in list(self.gates):
            if gate.takes(call, stage):  # one gate per request and stage
                await gate.hold(call)
                break
        self.gates = [g for g in self.gates if not g.released.is_set()]

    def release_all(self) -> None:
        for gate in self.gates:
            gate.release()
        self.gates.clear()
        self.rules.clear()

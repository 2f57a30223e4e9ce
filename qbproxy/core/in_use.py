"""Which tables are in use, and with which token they may be refreshed ahead (pure).

Refresh-ahead (qbproxy/sync/ahead.py) refreshes a table shortly before its TTL runs out, so that
nobody waits for the refresh; but only a table somebody asked about recently, so that a
realm nobody uses is left to expire and costs Intuit nothing. A background call needs a
token: this keeps, per realm, the last bearer token of a caller the proxy served as trusted
(Intuit accepted it for the realm within `cache.token_trust_seconds`). The token is held in
this process's memory only, never written anywhere, and dropped once its realm goes idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Realm:
    authorization: str
    used: dict[str, float] = field(default_factory=dict)  # entity -> last use (monotonic)


class Demand:
    def __init__(self, idle_seconds: float) -> None:
        # A table not asked about for this long is no longer in use.
        self.idle_seconds = idle_seconds
        self._realms: dict[str, _Realm] = {}

    def used(self, realm: str, entity: str, authorization: str, now: float) -> None:
        """A caller whose token is trusted for `realm` was just answered about `entity`."""
        state = self._realms.get(realm)
        if state is None:
            self._realms[realm] = _Realm(authorization, {entity: now})
            return
        state.authorization = authorization
        state.used[entity] = now

    def in_use(self, now: float) -> dict[str, frozenset[str]]:
        """Realm -> its tables asked about within idle_seconds. Forgets the rest, and the
        token of a realm with nothing left in use."""
        cutoff = now - self.idle_seconds
        active: dict[str, frozenset[str]] = {}
        for realm in list(self._realms):
            used = self._realms[realm].used
            for entity in [e for e, at in used.items() if at <= cutoff]:
                del used[entity]
            if used:
                active[realm] = frozenset(used)
            else:
                del self._realms[realm]
        return active

    def token(self, realm: str) -> str | None:
        state = self._realms.get(realm)
        return None if state is None else state.authorization

    def forget_token(self, realm: str, authorization: str) -> None:
        """That token may no longer be used for `realm` (Intuit refused it, or its trust ran
        out): nothing is refreshed for the realm until a trusted caller comes back."""
        state = self._realms.get(realm)
        if state is not None and state.authorization == authorization:
            del self._realms[realm]

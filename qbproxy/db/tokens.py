"""Token trust shared by every instance: memory first, then Postgres (shell over trust.py).

An instance that waited on another instance's table load must know whether Intuit
vouched for its caller's token; so accepted fingerprints are also written to Postgres,
keyed with a secret all instances share. Postgres failing only means fewer hits.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from qbproxy.core.trust import TokenTrust
from qbproxy.db.store import Store
from qbproxy.errors import StoreUnavailable

log = logging.getLogger("qbproxy.tokens")


class Tokens:
    def __init__(
        self, trust: TokenTrust, store: Store, trust_seconds: float, clock: Callable[[], float]
    ) -> None:
        self._trust = trust
        self._store = store
        self._trust_seconds = trust_seconds
        self._clock = clock

    async def share_key(self) -> None:
        """Adopt the instances' shared key (after migrations), and drop trust rows too old
        to vouch for anyone, so the table does not grow with every token ever seen."""
        self._trust.rekey(await self._store.proxy_secret(secrets.token_bytes(32)))
        await self.prune()

    async def prune(self) -> None:
        """Drop trust rows too old to vouch for anyone."""
        await self._store.forget_tokens_older_than(self._trust_seconds)

    async def trusted(self, realm: str, authorization: str | None) -> bool:
        fp = self._trust.fingerprint(authorization)
        if fp is None or self._trust_seconds <= 0:
            return False
        now = self._clock()
        if self._trust.trusted(realm, fp, now):
            return True
        try:
            age = await self._store.token_age(realm, fp)
        except StoreUnavailable:
            return False
        if age is None or age >= self._trust_seconds:
            return False
        self._trust.accept(realm, fp, now - age)
        return True

    async def accept(self, realm: str, authorization: str | None) -> None:
        fp = self._trust.fingerprint(authorization)
        if fp is None:
            return
        self._trust.accept(realm, fp, self._clock())
        try:
            await self._store.remember_token(realm, fp)
        except StoreUnavailable as exc:
            log.debug("token trust kept in memory only: %s", exc)

    async def reject(self, authorization: str | None) -> None:
        fp = self._trust.fingerprint(authorization)
        if fp is None:
            return
        self._trust.reject(fp)
        try:
            await self._store.forget_token(fp)
        except StoreUnavailable as exc:
            log.warning("could not drop a rejected token's trust in postgres: %s", exc)

    async def learn(self, realm: str, authorization: str | None, status: int) -> None:
        """What Intuit's status says about the token: 401/403 refuse it, 2xx/400 accept it."""
        if status in (401, 403):
            await self.reject(authorization)
        elif 200 <= status < 300 or status == 400:
            # A 400 is a Fault about the request itself: the token passed Intuit's check.
            await self.accept(realm, authorization)

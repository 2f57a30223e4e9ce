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
from qbproxy.db.pool import Pool
from qbproxy.errors import StoreUnavailable

log = logging.getLogger("qbproxy.tokens")

PROXY_SECRET = """
WITH created AS (
    INSERT INTO qbo_proxy_secret (secret) VALUES ($1)
    ON CONFLICT (id) DO NOTHING RETURNING secret
)
SELECT secret FROM created UNION ALL SELECT secret FROM qbo_proxy_secret
LIMIT 1
"""

REMEMBER_TOKEN = """
INSERT INTO qbo_token_trust (realm_id, fingerprint, accepted_at) VALUES ($1, $2, now())
ON CONFLICT (realm_id, fingerprint) DO UPDATE SET accepted_at = now()
"""

# Seconds since Intuit last accepted this token for this realm.
TOKEN_AGE = """
SELECT extract(epoch FROM now() - accepted_at)::float8 FROM qbo_token_trust
WHERE realm_id = $1 AND fingerprint = $2
"""

FORGET_TOKEN = "DELETE FROM qbo_token_trust WHERE fingerprint = $1"

FORGET_OLD_TOKENS = """
DELETE FROM qbo_token_trust WHERE accepted_at < now() - make_interval(secs => $1)
"""


class Tokens:
    def __init__(
        self, trust: TokenTrust, pool: Pool, trust_seconds: float, clock: Callable[[], float]
    ) -> None:
        self._trust = trust
        self._pool = pool
        self._trust_seconds = trust_seconds
        self._clock = clock

    async def share_key(self) -> None:
        """Adopt the instances' shared key (after migrations), and drop trust rows too old
        to vouch for anyone, so the table does not grow with every token ever seen."""
        async with self._pool.acquire("token") as conn:
            secret: bytes = await conn.fetchval(PROXY_SECRET, secrets.token_bytes(32))
        self._trust.rekey(secret)
        await self.prune()

    async def prune(self) -> None:
        """Drop trust rows too old to vouch for anyone."""
        async with self._pool.acquire("token") as conn:
            await conn.execute(FORGET_OLD_TOKENS, self._trust_seconds)

    async def trusted(self, realm: str, authorization: str | None) -> bool:
        fp = self._trust.fingerprint(authorization)
        if fp is None or self._trust_seconds <= 0:
            return False
        now = self._clock()
        if self._trust.trusted(realm, fp, now):
            return True
        try:
            async with self._pool.acquire("token") as conn:
                age: float | None = await conn.fetchval(TOKEN_AGE, realm, fp)
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
            async with self._pool.acquire("token") as conn:
                await conn.execute(REMEMBER_TOKEN, realm, fp)
        except StoreUnavailable as exc:
            log.debug("token trust kept in memory only: %s", exc)

    async def reject(self, authorization: str | None) -> None:
        fp = self._trust.fingerprint(authorization)
        if fp is None:
            return
        self._trust.reject(fp)
        try:
            async with self._pool.acquire("token") as conn:
                await conn.execute(FORGET_TOKEN, fp)
        except StoreUnavailable as exc:
            log.warning("could not drop a rejected token's trust in postgres: %s", exc)

    async def learn(self, realm: str, authorization: str | None, status: int) -> None:
        """What Intuit's status says about the token: 401/403 refuse it, 2xx/400 accept it."""
        if status in (401, 403):
            await self.reject(authorization)
        elif 200 <= status < 300 or status == 400:
            # A 400 is a Fault about the request itself: the token passed Intuit's check.
            await self.accept(realm, authorization)

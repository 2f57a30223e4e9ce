"""Which bearer tokens Intuit accepted for which realm, and when (pure; clock injected).

Only a keyed hash of a token is kept, never the token (design.md, promise 4). A cached
answer goes only to a caller whose token Intuit accepted for that realm within
`token_trust_seconds`; anyone else is forwarded so that Intuit decides.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

Fingerprint = bytes

# Bound the memory an attacker spraying tokens can make the proxy hold.
_MAX_ENTRIES = 100_000


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class TokenTrust:
    def __init__(self, trust_seconds: float, key: bytes | None = None) -> None:
        self._trust_seconds = trust_seconds
        # A per-process random key: fingerprints mean nothing outside this process.
        self._key = key if key is not None else secrets.token_bytes(32)
        self._accepted: dict[tuple[str, Fingerprint], float] = {}

    def fingerprint(self, authorization: str | None) -> Fingerprint | None:
        token = bearer_token(authorization)
        if token is None:
            return None
        return hmac.new(self._key, token.encode(), hashlib.sha256).digest()

    def trusted(self, realm: str, fp: Fingerprint | None, now: float) -> bool:
        if fp is None or self._trust_seconds <= 0:
            return False
        accepted_at = self._accepted.get((realm, fp))
        return accepted_at is not None and now - accepted_at < self._trust_seconds

    def accept(self, realm: str, fp: Fingerprint | None, now: float) -> None:
        if fp is None:
            return
        if len(self._accepted) >= _MAX_ENTRIES:
            self._forget_older_than(now - self._trust_seconds)
            if len(self._accepted) >= _MAX_ENTRIES:
                self._accepted.clear()
        self._accepted[(realm, fp)] = now

    def reject(self, fp: Fingerprint | None) -> None:
        """Intuit refused this token: drop its trust for every realm at once."""
        if fp is None:
            return
        for key in [k for k in self._accepted if k[1] == fp]:
            del self._accepted[key]

    def _forget_older_than(self, cutoff: float) -> None:
        for key in [k for k, t in self._accepted.items() if t < cutoff]:
            del self._accepted[key]

    def rekey(self, key: bytes) -> None:
        """Adopt the key shared by all instances (from Postgres); forgets what it knew."""
        if key != self._key:
            self._key = key
            self._accepted.clear()

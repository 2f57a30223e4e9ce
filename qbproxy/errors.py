"""The exceptions qbproxy raises: one root, few classes, each also a builtin where one fits."""


class QBProxyError(Exception):
    """Root of everything qbproxy raises on purpose."""


class ConfigError(QBProxyError, ValueError):
    """The configuration cannot be used; the message names the key."""


class StoreUnavailable(QBProxyError, ConnectionError):
    """Postgres cannot be reached or refused the work; callers fall back to forwarding."""


class StoreRejected(StoreUnavailable):
    """Postgres refused values that came from the request (a data error: out of range, too
    many parameters); Postgres itself is fine. Handled as StoreUnavailable: forwarded."""


class UpstreamError(QBProxyError):
    """Intuit could not be asked. Intuit's own 4xx/5xx answers are responses, not this."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """Intuit did not answer within upstream.timeout_seconds."""


class UpstreamUnavailable(UpstreamError, ConnectionError):
    """Intuit could not be reached (refused, reset, DNS)."""


class RateLimited(UpstreamError):
    """The proxy did not send: the realm is at Intuit's limits or backing off after a 429.

    Handlers answer Intuit's own 429 (responses.throttle_body()) with `Retry-After`.
    """

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(
            f"over Intuit's per-realm limits ({reason}), retry after {retry_after:.0f}s"
        )
        self.retry_after = retry_after
        self.reason = reason


class CircuitOpen(UpstreamUnavailable):
    """The realm's circuit is open after repeated failures: failing fast, not asking Intuit."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Intuit failing for this realm, circuit open for {retry_after:.0f}s")
        self.retry_after = retry_after


class ClientGone(QBProxyError):
    """The caller closed its connection: nothing Intuit did, so never counted against a
    circuit, and no traceback (a client that gives up is ordinary)."""


class RequestBodyError(QBProxyError):
    """The caller's body could not be received as sent."""


class SlowBody(RequestBodyError):
    """The body did not arrive within server.body_timeout_seconds: a 408, then close."""


class BadBody(RequestBodyError):
    """The body cannot be read (a corrupt gzip stream, a broken chunked encoding): a 400."""

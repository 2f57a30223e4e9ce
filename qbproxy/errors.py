"""The exceptions qbproxy raises: one root, few classes, each also a builtin where one fits."""


class QBProxyError(Exception):
    """Root of everything qbproxy raises on purpose."""


class ConfigError(QBProxyError, ValueError):
    """The configuration cannot be used; the message names the key."""


class StoreUnavailable(QBProxyError, ConnectionError):
    """Postgres cannot be reached or refused the work; callers fall back to forwarding."""


class UpstreamError(QBProxyError):
    """Intuit could not be asked. Intuit's own 4xx/5xx answers are responses, not this."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """Intuit did not answer within upstream.timeout_seconds."""


class UpstreamUnavailable(UpstreamError, ConnectionError):
    """Intuit could not be reached (refused, reset, DNS)."""

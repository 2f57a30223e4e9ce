"""Logger names and set-up. One access line per /v3 request, with the markers operators of
the earlier in-app cache grep for: [CACHE HIT], [CACHE MISS], [CACHE] (design.md).
Never a token, an Authorization header or a query string (they carry personal data)."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

access = logging.getLogger("qbproxy.access")

MARKERS = {
    "HIT": "[CACHE HIT]",
    "MISS": "[CACHE MISS]",
    "STALE": "[CACHE STALE]",
    "BYPASS": "[CACHE]",
}


def setup(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # aiohttp's own access log would print query strings; ours replaces it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def printable(text: str) -> str:
    """`text` with control characters escaped (a decoded path may carry ANSI escapes or
    newlines that would forge or garble log lines)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class _ServerNoise(logging.Filter):
    """aiohttp's server logger: a malformed request is one WARNING line without a traceback,
    a client that went away a DEBUG line; anything else (a bug) keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "malformed request: %s", (printable(str(exc.message)),)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        elif isinstance(exc, ConnectionError):
            record.msg, record.args = "client went away: %s", (type(exc).__name__,)
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
            return logging.getLogger("aiohttp.server").isEnabledFor(logging.DEBUG)
        return True


_NOISE = _ServerNoise()


def quiet_aiohttp() -> None:
    """Install the filter above (idempotent)."""
    server = logging.getLogger("aiohttp.server")
    if _NOISE not in server.filters:
        server.addFilter(_NOISE)

"""Logger names and set-up. One access line per /v3 request, with the markers operators of
the earlier in-app cache grep for: [CACHE HIT], [CACHE MISS], [CACHE] (design.md).
Never a token, an Authorization header or a query string (they carry personal data)."""

from __future__ import annotations

import logging

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

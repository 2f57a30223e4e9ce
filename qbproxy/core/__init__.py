"""The pure core: what to do with a request, decided from facts passed in.

May touch nothing but the standard library and orjson: no aiohttp, asyncpg, asyncio,
prometheus_client, sockets or files; the clock is an argument (tests/unit/test_pure_core.py).
"""

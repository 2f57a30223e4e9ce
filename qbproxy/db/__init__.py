"""The Postgres layer (asyncpg, yoyo): returns facts and the database's clock, never verdicts.

May touch Postgres only; freshness is judged by qbproxy.core.policy, not here.
"""

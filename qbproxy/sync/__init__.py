"""Keeping the cache in step with Intuit: refreshes (whole loads, CDC), refresh-ahead,
webhooks, and the one purge path with its cross-instance invalidation.

May touch Postgres (through qbproxy.db) and Intuit (through qbproxy.upstream).
"""

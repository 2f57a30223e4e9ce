"""qbproxy: a read-through caching reverse proxy for the QuickBooks Online API v3."""

__version__ = "0.1.0"

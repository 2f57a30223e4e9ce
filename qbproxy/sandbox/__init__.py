"""A fake Intuit QBO API v3 served over real HTTP: seeded companies, the query language,
writes with their balance side effects, batch, CDC, webhooks and fault injection."""

from qbproxy.sandbox.app import create_app
from qbproxy.sandbox.cli import main
from qbproxy.sandbox.config import SandboxConfig
from qbproxy.sandbox.faults import Call, Gate, Match
from qbproxy.sandbox.state import SANDBOX_KEY, Sandbox

__all__ = ["SANDBOX_KEY", "Call", "Gate", "Match", "Sandbox", "SandboxConfig", "create_app", "main"]

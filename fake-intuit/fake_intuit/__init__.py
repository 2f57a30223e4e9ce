"""A fake Intuit QBO API v3 served over real HTTP: seeded companies, the query language,
writes with their balance side effects, batch, CDC, webhooks and fault injection."""

from fake_intuit.app import create_app
from fake_intuit.cli import main
from fake_intuit.config import SandboxConfig
from fake_intuit.faults import Call, Gate, Match
from fake_intuit.state import SANDBOX_KEY, Sandbox

__all__ = ["SANDBOX_KEY", "Call", "Gate", "Match", "Sandbox", "SandboxConfig", "create_app", "main"]

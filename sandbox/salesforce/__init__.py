"""Salesforce REST emulator for tests, benchmarks and the demo (see BEHAVIOR.md)."""

from sandbox.salesforce.app import CONCURRENT_LIMIT, DAILY_LIMIT
from sandbox.salesforce.auth import INVALID_SESSION
from sandbox.salesforce.emulator import SalesforceEmulator

__all__ = ["CONCURRENT_LIMIT", "DAILY_LIMIT", "INVALID_SESSION", "SalesforceEmulator"]

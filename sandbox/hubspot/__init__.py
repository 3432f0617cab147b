"""A local HubSpot CRM API emulator (see BEHAVIOR.md for what it reproduces and from where)."""

from sandbox.hubspot.emulator import HubSpotEmulator

__all__ = ["HubSpotEmulator"]

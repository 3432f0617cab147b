"""A local HubSpot CRM API emulator (see BEHAVIOR.md for what it reproduces and from where)."""

from sandbox.hubspot.emulator import HubSpotEmulator
from sandbox.hubspot.oauth import OAuthApp

__all__ = ["HubSpotEmulator", "OAuthApp"]

"""Salesforce connector (simple-salesforce over REST); see BEHAVIOR.md for the quirks it handles."""

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.settings import SalesforceSettings

__all__ = ["SalesforceConnector", "SalesforceSettings"]

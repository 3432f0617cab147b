"""Loopback alert receivers (Slack webhook, SMTP), started per test."""

from __future__ import annotations

import pytest

from tests.routing.receivers import SlackReceiver, SmtpReceiver


@pytest.fixture
def slack():
    r = SlackReceiver()
    yield r
    r.stop()


@pytest.fixture
def smtp():
    r = SmtpReceiver()
    yield r
    r.stop()

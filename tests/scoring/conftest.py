"""Builders for scoring tests: a fixed `now`, contacts and engagements by age in days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from itertools import count

import pytest

from mapping.model import Contact, Engagement, EngagementKind

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
_ids = count(1)


def make_contact(**fields: object) -> Contact:
    base: dict[str, object] = {"source": "test", "id": "c1", "email": "ada@acme.io"}
    base.update(fields)
    return Contact(**base)  # type: ignore[arg-type]


def make_engagement(kind: str, days_ago: float, detail: str = "", campaign: str = "") -> Engagement:
    return Engagement(source="test", id=f"e{next(_ids)}", contact_id="c1", kind=EngagementKind(kind),
                      occurred_at=NOW - timedelta(days=days_ago), detail=detail, campaign=campaign)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def contact() -> Callable[..., Contact]:
    return make_contact


@pytest.fixture
def eng() -> Callable[..., Engagement]:
    return make_engagement

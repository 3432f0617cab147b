"""Engagement detail as global, paged streams: web events, legacy email events, forms and submissions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sandbox.hubspot.crm_routes import next_link
from sandbox.hubspot.limits import error_body, validation_error
from sandbox.hubspot.portal import Portal
from sandbox.hubspot.seeding import (
    CONTACT_ID_BASE,
    EMAIL_TYPE_SHIFT,
    EMAIL_TYPES,
    EMAILS,
    FORM_DETAIL_FIELD,
    FORM_NAMES,
    campaign_id,
    form_guid,
    iso,
)
from sandbox.server import App, Request, Response

EVENTS_MAX, EMAIL_EVENTS_MAX, FORMS_MAX, SUBMISSIONS_MAX = 100, 1000, 50, 50


def _when(value: str | None) -> int | None:
    """An ISO datetime query value as the stream's key: whole milliseconds of its wall-clock time read as UTC
    (what comparing it with the stored `iso` strings meant)."""
    if not value:
        return None
    at = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    return (at.replace(tzinfo=UTC) - _EPOCH) // _MS


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _int(req: Request, name: str, default: int, maximum: int | None = None) -> int:
    """A non-negative integer query parameter; garbage falls back to the default, `maximum` caps it."""
    raw = req.arg(name) or ""
    value = int(raw) if raw.isdigit() else default
    return min(value, maximum) if maximum else value


class EngagementRoutes:
    """Streams are pre-sorted at seed time, so each page is a bisect plus a slice."""

    def __init__(self, app: App, portal: Portal, events_api: bool = True) -> None:
        self.app, self.portal, self.events_api = app, portal, events_api

    def install(self) -> None:
        r = self.app.route
        r("GET", "/events/v3/events", "events.list")(self.web_events)
        r("GET", "/email/public/v1/events", "email.events")(self.email_events)
        r("GET", "/email/public/v1/campaigns/{campaignId}", "email.campaign")(self.campaign)
        r("GET", "/marketing/v3/forms", "forms.list")(self.forms)
        r("GET", "/form-integrations/v1/submissions/forms/{formGuid}", "forms.submissions")(self.submissions)

    def web_events(self, req: Request) -> Response:
        """`/events/v3/events`: objectType/eventType/occurredAfter/occurredBefore, `after` paging."""
        if not self.events_api:  # Enterprise only (reference §4.6)
            return Response(403, error_body(
                "This app hasn't been granted all required scopes to make this call. Read more about required "
                "scopes here: https://developers.hubspot.com/scopes.", "MISSING_SCOPES",
                errors=[{"message": "One or more of the following scopes are required.",
                         "context": {"requiredGranularScopes": ["behavioral_events.event_definitions.read_write"]}}],
                links={"scopes": "https://developers.hubspot.com/scopes"}))
        try:
            lo_key, hi_key = _when(req.arg("occurredAfter")), _when(req.arg("occurredBefore"))
        except ValueError as exc:
            return validation_error(f"Invalid datetime: {exc}")
        if (req.arg("objectType") or "contact").lower() != "contact" or req.arg("eventType", "e_visited_page") != (
                "e_visited_page"):
            return Response(200, {"results": []})
        limit = _int(req, "limit", 100, EVENTS_MAX)
        events: Sequence[dict[str, Any]] = self.portal.streams.web_events
        stream = self.portal.streams.web_events
        lo = int(np.searchsorted(stream.keys, lo_key, "right")) if lo_key is not None else 0
        hi = int(np.searchsorted(stream.keys, hi_key, "left")) if hi_key is not None else len(stream)
        object_id = req.arg("objectId")
        if object_id:  # a per-record read: a scan of the index columns, as it should be rare
            picked = [stream[lo + int(k)] for k in np.flatnonzero(np.isin(stream.who[lo:hi], self._owners(object_id)))]
            lo, hi, events = 0, len(picked), picked
        descending = any(s.upper().startswith(("DESC", "-")) for s in req.args("sort")) or not req.args("sort")
        pos = _int(req, "after", 0)
        if descending:
            chunk = events[max(lo, hi - pos - limit) : hi - pos][::-1]
        else:
            chunk = events[lo + pos : lo + pos + limit]
        body: dict[str, Any] = {"results": chunk}
        if pos + limit < hi - lo:
            body["paging"] = {"next": {"after": str(pos + limit), "link": next_link(req, str(pos + limit))}}
        return Response(200, body)

    def _owners(self, object_id: str) -> list[int]:
        """Seed indexes whose web events belong to contact `object_id` now (its own, and merged-away ones')."""
        moved = self.portal.streams.moved
        ids = [c for c in (object_id, *(lo for lo, win in moved.items() if win == object_id))
               if moved.get(c, c) == object_id and c.isdigit()]
        return [(int(c) - CONTACT_ID_BASE) // 7 for c in ids if (int(c) - CONTACT_ID_BASE) % 7 == 0]

    def email_events(self, req: Request) -> Response:
        """Legacy `/email/public/v1/events`: `{events, hasMore, offset}`, oldest first."""
        events = self.portal.streams.email_events
        start, end = req.arg("startTimestamp"), req.arg("endTimestamp")
        lo = int(np.searchsorted(events.keys, int(start), "left")) if start and start.isdigit() else 0
        hi = int(np.searchsorted(events.keys, int(end), "right")) if end and end.isdigit() else len(events)
        pos = max(lo, _int(req, "offset", 0))
        limit = _int(req, "limit", 100, EMAIL_EVENTS_MAX)
        wanted = req.arg("eventType")
        recipient = (req.arg("recipient") or "").lower()
        out: list[dict[str, Any]] = []
        if wanted and not recipient and hasattr(events, "nth"):
            # The type is in each row's event number (seeding): skip to the matching rows without rendering.
            code = EMAIL_TYPES.index(wanted) if wanted in EMAIL_TYPES else -1
            hits = np.flatnonzero((events.nth[pos:hi] >> EMAIL_TYPE_SHIFT) == code)
            rows = [pos + int(k) for k in hits[:limit]]
            out = [events[k] for k in rows]
            more = len(hits) > limit
            pos = rows[-1] + 1 if more else hi
            return Response(200, {"hasMore": more, "offset": str(pos), "events": out})
        while pos < hi and len(out) < limit:
            e = events[pos]
            pos += 1
            if (not wanted or e["type"] == wanted) and (not recipient or e["recipient"] == recipient):
                out.append(e)
        return Response(200, {"hasMore": pos < hi, "offset": str(pos), "events": out})

    def campaign(self, req: Request) -> Response:
        cid = req.params["campaignId"]
        name = next((n for n in EMAILS if str(campaign_id(n)) == cid), None)
        if name is None:
            return Response(404, {"status": "error", "message": f"Campaign {cid} not found"})
        return Response(200, {"id": int(cid), "appId": 113, "appName": "BatchEmail", "name": name,
                              "subject": name, "type": "BATCH_EMAIL", "contentId": int(cid) * 3})

    def forms(self, req: Request) -> Response:
        limit = _int(req, "limit", 20, 50)
        pos = _int(req, "after", 0)
        names = FORM_NAMES[pos : pos + limit]
        body: dict[str, Any] = {"results": [self._form(n) for n in names]}
        if pos + limit < len(FORM_NAMES):
            body["paging"] = {"next": {"after": str(pos + limit), "link": next_link(req, str(pos + limit))}}
        return Response(200, body)

    def _form(self, name: str) -> dict[str, Any]:
        fields = ["email", "firstname", "lastname", *([FORM_DETAIL_FIELD[name]] if name in FORM_DETAIL_FIELD else [])]
        stamp = iso(self.portal.anchor)
        return {
            "id": form_guid(name), "name": name, "formType": "hubspot", "createdAt": stamp, "updatedAt": stamp,
            "archived": False,
            "fieldGroups": [{"groupType": "default_group", "richTextType": "text", "fields": [
                {"objectTypeId": "0-1", "name": f, "label": f.title(), "required": f == "email", "hidden": False,
                 "fieldType": "email" if f == "email" else "single_line_text"} for f in fields]}],
            "configuration": {"language": "en", "cloneable": True, "editable": True, "archivable": True,
                              "recaptchaEnabled": False, "notifyContactOwner": False, "notifyRecipients": [],
                              "createNewContactForNewEmail": False, "prePopulateKnownValues": True,
                              "allowLinkToResetKnownValues": False, "lifecycleStages": []},
            "displayOptions": {"renderRawHtml": False, "theme": "default_style", "submitButtonText": "Submit",
                               "style": {}, "cssClass": ""},
            "legalConsentOptions": {"type": "none"},
        }

    def submissions(self, req: Request) -> Response:
        """Newest first, `after` paging, at most 50 per page (no time filter exists on this endpoint)."""
        subs = self.portal.streams.submissions.get(req.params["formGuid"])
        if subs is None:
            return Response(404, {"status": "error", "message": "Form not found", "category": "OBJECT_NOT_FOUND"})
        limit = _int(req, "limit", 20, SUBMISSIONS_MAX)
        pos = _int(req, "after", 0)
        body: dict[str, Any] = {"results": subs[pos : pos + limit]}
        if pos + limit < len(subs):
            body["paging"] = {"next": {"after": str(pos + limit), "link": next_link(req, str(pos + limit))}}
        return Response(200, body)

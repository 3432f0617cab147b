"""What every Salesforce route shares: the URL prefix, error bodies, JSON bodies, and the App subclass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.server import App, DropConnection, Handler, Request, Response

DATA = "/services/data/v{version}"
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def errors(message: str, code: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
    """The whole-request error shape: a JSON array of {message, errorCode[, fields]}."""
    body: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        body["fields"] = fields
    return [body]


class SalesforceApp(App):
    """An App whose unmatched routes and handler crashes answer in Salesforce's error shape."""

    def not_found(self, req: Request) -> Response:
        return Response(404, NOT_FOUND)

    def route(self, method: str, pattern: str, name: str) -> Callable[[Handler], Handler]:
        register = super().route(method, pattern, name)

        def deco(fn: Handler) -> Handler:
            register(_unknown_exception(fn))
            return fn

        return deco


def _unknown_exception(fn: Handler) -> Handler:
    """An emulator bug surfaces as Salesforce's 500 UNKNOWN_EXCEPTION, not a foreign body."""

    def guarded(req: Request) -> Response:
        try:
            return fn(req)
        except DropConnection:
            raise
        except Exception as exc:  # reported to the client, as the real API does
            return Response(500, errors("An unexpected error occurred. Please include this ErrorId if you contact "
                                        f"support: sandbox ({exc!r})", "UNKNOWN_EXCEPTION"))

    return guarded


def json_object(req: Request) -> dict[str, Any] | Response:
    """The request body as a JSON object, or Salesforce's parser error."""
    try:
        body = req.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Response(400, errors("Json Deserialization failed: expected a JSON object", "JSON_PARSER_ERROR"))
    return body

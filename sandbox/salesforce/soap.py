"""SOAP `login()` at `/services/Soap/u/{version}`: the password + security-token flow.

simple-salesforce reads only `sessionId` and `serverUrl` from the answer and
`sf:exceptionCode` / `sf:exceptionMessage` from a fault (reference §1.1).
SOAP login is gone from API 65.0 on, so those versions get a fault.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from sandbox.server import Request, Response

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
LAST_SOAP_LOGIN_VERSION = 64.0
ORG_ID = "00DSb0000000001AAA"


def login_fields(body: bytes) -> dict[str, str]:
    """username / password text from a login envelope, whatever the namespace prefixes."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return {}
    return {el.tag.rsplit("}", 1)[-1]: el.text or "" for el in root.iter()
            if el.tag.rsplit("}", 1)[-1] in ("username", "password")}


def fault(code: str, message: str) -> Response:
    text = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}"
        '</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, text, content_type="text/xml;charset=UTF-8")


def success(instance_url: str, version: str, session_id: str, user_id: str) -> Response:
    text = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
        'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
        f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/{ORG_ID}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{instance_url}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId><userId>{user_id}</userId>"
        "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
    return Response(200, text, content_type="text/xml;charset=UTF-8")


def check_version(version: str) -> Response | None:
    try:
        if float(version) <= LAST_SOAP_LOGIN_VERSION:
            return None
    except ValueError:
        pass
    return fault("UNSUPPORTED_API_VERSION", f"SOAP login() is not available in API version {version}")


def handle_login(req: Request) -> dict[str, str] | Response:
    """The submitted credentials, or the fault to answer with."""
    refused = check_version(req.params["version"])
    if refused is not None:
        return refused
    fields = login_fields(req.body)
    if "username" not in fields or "password" not in fields:
        return fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
    return fields

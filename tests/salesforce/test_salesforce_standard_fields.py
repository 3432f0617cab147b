"""Standard Lead and Contact fields every org has (Phone, Description, address, Website, Rating,
LastActivityDate): peers such as tap-salesforce and Airbyte's source select every field describe lists."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

LEAD = {"Phone": "phone", "Description": "textarea", "Website": "url", "Rating": "picklist", "Street": "textarea",
        "City": "string", "State": "string", "PostalCode": "string", "LastActivityDate": "date"}
CONTACT = {"Phone": "phone", "Description": "textarea", "MailingStreet": "textarea", "MailingCity": "string",
           "MailingState": "string", "MailingPostalCode": "string", "LastActivityDate": "date"}


def test_describe_lists_the_standard_fields_with_their_types(sf):
    for obj, expected in (("Lead", LEAD), ("Contact", CONTACT)):
        fields = {f["name"]: f for f in sf.restful(f"sobjects/{obj}/describe")["fields"]}
        assert {name: fields[name]["type"] for name in expected if name in fields} == expected, obj
        assert fields["LastActivityDate"]["updateable"] is False and fields["Description"]["length"] == 32000
    rating = {f["name"]: f for f in sf.restful("sobjects/Lead/describe")["fields"]}["Rating"]
    assert [v["value"] for v in rating["picklistValues"]] == ["Hot", "Warm", "Cold"]


def test_the_fields_are_queryable_and_writable_like_any_standard_field(sf):
    lead = sf.query(f"SELECT Id, {', '.join(LEAD)} FROM Lead WHERE IsConverted = false LIMIT 1")["records"][0]
    assert all(lead[name] is None for name in LEAD)  # the seed leaves them empty
    sf.Lead.update(lead["Id"], {"Phone": "+1 415 555 0100", "City": "Oakland", "Rating": "Warm"})
    again = sf.query(f"SELECT Phone, City, Rating FROM Lead WHERE Id = '{lead['Id']}'")["records"][0]
    assert (again["Phone"], again["City"], again["Rating"]) == ("+1 415 555 0100", "Oakland", "Warm")
    contact = sf.query(f"SELECT Id, {', '.join(CONTACT)} FROM Contact LIMIT 1")["records"][0]
    assert all(contact[name] is None for name in CONTACT)
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
        sf.Lead.update(lead["Id"], {"LastActivityDate": "2026-04-01"})

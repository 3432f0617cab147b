"""Every standard object type answers the Properties API (v3 and legacy v2) and v4 associations, through the
real client: peers list `companies`, `deals`, `communications` … properties and read contact → company links."""

from __future__ import annotations

import json

import pytest
import requests
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInput

STANDARD = {"companies": "name", "deals": "dealstage", "tickets": "hs_pipeline_stage",
            "communications": "hs_communication_channel_type", "products": "price", "line_items": "quantity",
            "quotes": "hs_title", "contacts": "email", "tasks": "hs_task_subject"}


@pytest.mark.parametrize("object_type", sorted(STANDARD))
def test_properties_of_every_standard_object(shared_emu, sdk, object_type):
    client = sdk(shared_emu)
    page = client.crm.properties.core_api.get_all(object_type, _preload_content=False)
    names = {p["name"] for p in json.loads(page.data)["results"]}
    assert {STANDARD[object_type], "hs_object_id"} <= names
    one = client.crm.properties.core_api.get_by_name(object_type, STANDARD[object_type])
    assert one.name == STANDARD[object_type]


def test_legacy_v2_deal_properties_are_a_bare_array(shared_emu):
    s = requests.Session()
    s.trust_env = False
    reply = s.get(f"{shared_emu.base_url}/properties/v2/deal/properties",
                  headers={"Authorization": f"Bearer {shared_emu.token}"}, timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert isinstance(body, list) and {"dealname", "amount", "dealstage", "pipeline"} <= {p["name"] for p in body}
    assert all(isinstance(p["createdAt"], int) for p in body)  # legacy timestamps: epoch ms


def test_v4_associations_contact_to_companies(emu, sdk):
    client = sdk(emu)
    contacts = client.crm.contacts.basic_api.get_page(limit=2).results
    linked, alone = contacts[0].id, contacts[1].id
    company = client.crm.companies.basic_api.create(CompanyInput(properties={"name": "Acme", "domain": "acme.io"}))
    client.crm.associations.v4.basic_api.create_default("contacts", linked, "companies", company.id)
    req = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=linked), PublicFetchAssociationsBatchRequest(id=alone)])
    reply = client.crm.associations.v4.batch_api.get_page("contacts", "companies", req, _preload_content=False)
    body = json.loads(reply.data)
    assert reply.status == 207  # the contact without a company is an error in the batch, not a failure of it
    (result,) = body["results"]
    assert result["from"]["id"] == linked and result["to"][0]["toObjectId"] == int(company.id)
    assert result["to"][0]["associationTypes"][0]["typeId"] == 279
    assert body["errors"][0]["context"]["fromObjectId"] == [alone]
    assert client.crm.companies.basic_api.get_page(limit=10).results[0].properties["name"] == "Acme"

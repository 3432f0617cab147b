"""The objects and fields the emulator serves, shaped like `describe` output.

Field sets follow the reference (salesforce-api.md §3): real standard fields
plus leadsync's custom fields. Picklists use real default values so that dirty
seed values (an Industry the picklist does not list) stay dirty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.salesforce.ids import PREFIXES

INDUSTRY = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
    "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
    "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery",
    "Manufacturing", "Media", "Not For Profit", "Other", "Recreation", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities",
)
LEAD_STATUS = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
STAGES = ("Subscriber", "Lead", "MQL", "SQL", "Opportunity", "Customer")
ACCOUNT_TYPE = ("Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
                "Installation Partner", "Technology Partner", "Other")
TASK_STATUS = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
PRIORITY = ("High", "Normal", "Low")
TASK_SUBTYPE = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
CAMPAIGN_TYPE = ("Webinar", "Content", "Demo Request", "Email", "Web", "Other")
#: EmailMessage.Status values: New, Read, Replied, Sent, Forwarded, Draft (Salesforce's object reference;
#: the leadsync reference §3 names the field only).
EMAIL_STATUS = ("0", "1", "2", "3", "4", "5")
OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
                      "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost")
LEAD_SOURCE = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
RATING = ("Hot", "Warm", "Cold")  # Lead.Rating's default picklist

#: Types whose SOQL literals are unquoted; used for filter type checks.
NUMERIC = frozenset({"double", "int", "currency", "percent"})
TEXTUAL = frozenset({"string", "textarea", "email", "picklist", "phone", "url", "combobox", "id", "reference"})


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    updateable: bool = True
    createable: bool = True
    nillable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: str | None = None
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    custom: bool = False

    def describe(self) -> dict:
        """The field as `GET /sobjects/{obj}/describe` lists it (the keys clients read)."""
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "length": self.length,
            "custom": self.custom,
            "updateable": self.updateable,
            "createable": self.createable,
            "nillable": self.nillable,
            "filterable": self.type != "textarea" or self.length <= 255,
            "sortable": self.type != "textarea" or self.length <= 255,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.external_id or self.name == "Id",
            "defaultValueFormula": None,
            "defaultedOnCreate": self.default is not None,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"active": True, "defaultValue": v == self.default, "label": v, "value": v, "validFor": None}
                for v in self.picklist
            ],
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship,
            "polymorphicForeignKey": len(self.reference_to) > 1,
        }


@dataclass(frozen=True)
class SObjectDef:
    name: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    label: str = ""

    def field(self, name: str) -> FieldDef | None:
        """Field names are case-insensitive in SOQL and JSON bodies alike."""
        return self.fields.get(name) or self._folded().get(name.casefold())

    def _folded(self) -> dict[str, FieldDef]:
        folded = self.__dict__.get("_fold")
        if folded is None:
            folded = {k.casefold(): v for k, v in self.fields.items()}
            object.__setattr__(self, "_fold", folded)
        return folded

    def relationship(self, name: str) -> FieldDef | None:
        for f in self.fields.values():
            if f.relationship and f.relationship.casefold() == name.casefold():
                return f
        return None

    def describe(self, version: str) -> dict:
        return {
            "name": self.name,
            "label": self.label or self.name,
            "keyPrefix": PREFIXES.get(self.name),
            "custom": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "urls": {"sobject": f"/services/data/v{version}/sobjects/{self.name}",
                     "describe": f"/services/data/v{version}/sobjects/{self.name}/describe"},
            "fields": [f.describe() for f in self.fields.values()],
        }


def _system() -> list[FieldDef]:
    ro = {"updateable": False, "createable": False, "nillable": False}
    return [
        FieldDef("Id", "id", "Record ID", 18, **ro),
        FieldDef("IsDeleted", "boolean", "Deleted", **ro),
        FieldDef("CreatedDate", "datetime", "Created Date", **ro),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", **ro),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", **ro),
    ]


def _owner() -> FieldDef:
    return FieldDef("OwnerId", "reference", "Owner ID", 18, reference_to=("Group", "User"), relationship="Owner",
                    nillable=False)


def _managed() -> list[FieldDef]:
    return [
        FieldDef("LeadSync_Stage__c", "picklist", "LeadSync Stage", 255, picklist=STAGES, restricted=True, custom=True),
        FieldDef("LeadSync_Score__c", "double", "LeadSync Score", custom=True),
        FieldDef("LeadSync_Fit__c", "double", "LeadSync Fit", custom=True),
        FieldDef("LeadSync_Engagement__c", "double", "LeadSync Engagement", custom=True),
        FieldDef("LeadSync_Reason__c", "string", "LeadSync Reason", 255, custom=True),
        # The HubSpot contact this record is one person with (written by leadsync when it links or hands off).
        FieldDef("LeadSync_HubSpot_Id__c", "string", "LeadSync HubSpot Id", 40, custom=True),
    ]


def _standard_person(mailing: bool) -> list[FieldDef]:
    """Standard fields every org's Lead (`mailing=False`) or Contact has that the seed leaves empty; peers
    select them from describe (Salesforce Object Reference, Lead and Contact; lengths as describe reports).
    `LastActivityDate` is read-only (Salesforce derives it from the record's activities; not maintained here)."""
    prefix = "Mailing" if mailing else ""
    fields = [
        FieldDef("Phone", "phone", "Phone", 40), FieldDef("Description", "textarea", "Description", 32000),
        FieldDef(f"{prefix}Street", "textarea", f"{prefix} Street".strip(), 255),
        FieldDef(f"{prefix}City", "string", f"{prefix} City".strip(), 40),
        FieldDef(f"{prefix}State", "string", f"{prefix} State/Province".strip(), 80),
        FieldDef(f"{prefix}PostalCode", "string", f"{prefix} Zip/Postal Code".strip(), 20),
        FieldDef("LastActivityDate", "date", "Last Activity", updateable=False, createable=False),
    ]
    if not mailing:
        fields += [FieldDef("Website", "url", "Website", 255),
                   FieldDef("Rating", "picklist", "Rating", 255, picklist=RATING)]
    return fields


def _obj(name: str, fields: list[FieldDef]) -> SObjectDef:
    return SObjectDef(name, {f.name: f for f in fields}, name)


def build_schema(with_managed: bool = True, lead_statuses: tuple[str, ...] = LEAD_STATUS) -> dict[str, SObjectDef]:
    """Every object by name; `with_managed=False` models an org where nobody created leadsync's fields.

    `lead_statuses` is the org's own Lead.Status picklist (orgs add values such as "Marketing Qualified").
    """
    managed = _managed() if with_managed else []
    ro = {"updateable": False, "createable": False}
    lead = [
        *_system(), FieldDef("FirstName", "string", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", 80, nillable=False),
        FieldDef("Name", "string", "Full Name", 121, **ro), FieldDef("Email", "email", "Email", 80),
        FieldDef("Title", "string", "Title", 128), FieldDef("Company", "string", "Company", 255, nillable=False),
        FieldDef("NumberOfEmployees", "int", "Employees"),
        FieldDef("Industry", "picklist", "Industry", 255, picklist=INDUSTRY),
        FieldDef("Country", "string", "Country", 80), _owner(),
        FieldDef("Status", "picklist", "Status", 255, picklist=lead_statuses, default=lead_statuses[0],
                 nillable=False),
        FieldDef("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCE),
        FieldDef("IsConverted", "boolean", "Converted", **ro),
        FieldDef("ConvertedDate", "date", "Converted Date", **ro),
        FieldDef("ConvertedContactId", "reference", "Converted Contact ID", 18, reference_to=("Contact",),
                 relationship="ConvertedContact", **ro),
        FieldDef("ConvertedOpportunityId", "reference", "Converted Opportunity ID", 18,
                 reference_to=("Opportunity",), relationship="ConvertedOpportunity", **ro),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out"), *_standard_person(mailing=False), *managed,
        # A hand-off Lead's idempotency key: leadsync creates it by upsert on this External ID.
        *([FieldDef("LeadSync_Person_Key__c", "string", "LeadSync Person Key", 255, external_id=True, unique=True,
                    custom=True)] if with_managed else []),
    ]
    contact = [
        *_system(), FieldDef("FirstName", "string", "First Name", 40),
        FieldDef("LastName", "string", "Last Name", 80, nillable=False),
        FieldDef("Name", "string", "Full Name", 121, **ro), FieldDef("Email", "email", "Email", 80),
        FieldDef("Title", "string", "Title", 128),
        FieldDef("AccountId", "reference", "Account ID", 18, reference_to=("Account",), relationship="Account"),
        FieldDef("MailingCountry", "string", "Mailing Country", 80), _owner(),
        FieldDef("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCE),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out"), *_standard_person(mailing=True), *managed,
    ]
    account = [
        *_system(), FieldDef("Name", "string", "Account Name", 255, nillable=False),
        FieldDef("Type", "picklist", "Account Type", 255, picklist=ACCOUNT_TYPE),
        FieldDef("Industry", "picklist", "Industry", 255, picklist=INDUSTRY),
        FieldDef("NumberOfEmployees", "int", "Employees"), FieldDef("BillingCountry", "string", "Billing Country", 80),
        _owner(),
    ]
    user = [
        *_system(), FieldDef("FirstName", "string", "First Name", 40), FieldDef("LastName", "string", "Last Name", 80),
        FieldDef("Name", "string", "Full Name", 121, **ro), FieldDef("Email", "email", "Email", 128),
        FieldDef("Username", "string", "Username", 80), FieldDef("IsActive", "boolean", "Active"),
    ]
    group = [*_system(), FieldDef("Name", "string", "Name", 40), FieldDef("Type", "picklist", "Type", 40,
                                                                           picklist=("Queue", "Regular"))]
    lead_status = [
        *_system(), FieldDef("MasterLabel", "string", "Master Label", 255), FieldDef("ApiName", "string", "Api Name", 255),
        FieldDef("IsConverted", "boolean", "Is Converted"), FieldDef("IsDefault", "boolean", "Is Default"),
        FieldDef("SortOrder", "int", "Sort Order"),
    ]
    campaign = [
        *_system(), FieldDef("Name", "string", "Name", 80, nillable=False),
        FieldDef("Type", "picklist", "Type", 255, picklist=CAMPAIGN_TYPE),
        FieldDef("Status", "picklist", "Status", 255, picklist=("Planned", "In Progress", "Completed", "Aborted")),
        FieldDef("IsActive", "boolean", "Active"), FieldDef("StartDate", "date", "Start Date"), _owner(),
    ]
    member = [
        *_system(),
        FieldDef("CampaignId", "reference", "Campaign ID", 18, reference_to=("Campaign",), relationship="Campaign",
                 nillable=False, updateable=False),
        FieldDef("LeadId", "reference", "Lead ID", 18, reference_to=("Lead",), relationship="Lead", updateable=False),
        FieldDef("ContactId", "reference", "Contact ID", 18, reference_to=("Contact",), relationship="Contact",
                 updateable=False),
        FieldDef("Status", "picklist", "Status", 40),
        FieldDef("HasResponded", "boolean", "Responded", **ro),
        FieldDef("FirstRespondedDate", "date", "First Responded Date", **ro),
    ]
    member_status = [  # every campaign's member statuses (Ref §3 CampaignMemberStatus)
        *_system(),
        FieldDef("CampaignId", "reference", "Campaign ID", 18, reference_to=("Campaign",), relationship="Campaign",
                 nillable=False, updateable=False),
        FieldDef("Label", "string", "Member Status", 765, nillable=False), FieldDef("HasResponded", "boolean", "Responded"),
        FieldDef("IsDefault", "boolean", "Default"), FieldDef("SortOrder", "int", "Sort Order"),
    ]
    who = {"reference_to": ("Contact", "Lead"), "relationship": "Who"}
    task = [
        *_system(), FieldDef("WhoId", "reference", "Name ID", 18, **who),
        FieldDef("WhatId", "reference", "Related To ID", 18, reference_to=("Account", "Campaign"), relationship="What"),
        FieldDef("Subject", "combobox", "Subject", 255,
                 picklist=("Call", "Email", "Send Letter", "Send Quote", "Other")),
        FieldDef("ActivityDate", "date", "Due Date Only"),
        FieldDef("Status", "picklist", "Status", 255, picklist=TASK_STATUS, default="Not Started", nillable=False),
        FieldDef("Priority", "picklist", "Priority", 255, picklist=PRIORITY, default="Normal", nillable=False),
        _owner(), FieldDef("Description", "textarea", "Description", 32000),
        FieldDef("TaskSubtype", "picklist", "Task Subtype", 255, picklist=TASK_SUBTYPE, restricted=True,
                 updateable=False),
        FieldDef("IsClosed", "boolean", "Closed", **ro), FieldDef("CompletedDateTime", "datetime", "Completed Date", **ro),
        FieldDef("CallType", "picklist", "Call Type", 255, picklist=("Internal", "Inbound", "Outbound")),
        *([FieldDef("LeadSync_Key__c", "string", "LeadSync Key", 255, external_id=True, unique=True, custom=True)]
          if with_managed else []),
    ]
    event = [
        *_system(), FieldDef("WhoId", "reference", "Name ID", 18, **who),
        FieldDef("WhatId", "reference", "Related To ID", 18, reference_to=("Account", "Campaign"), relationship="What"),
        FieldDef("Subject", "combobox", "Subject", 255, picklist=("Call", "Email", "Meeting", "Send Letter/Quote")),
        FieldDef("ActivityDateTime", "datetime", "Due Date Time"), FieldDef("DurationInMinutes", "int", "Duration"),
        FieldDef("EventSubtype", "picklist", "Event Subtype", 255, picklist=("Event",), updateable=False),
        _owner(), FieldDef("Description", "textarea", "Description", 32000),
    ]
    ro_create = {"updateable": False}
    email_message = [  # fields per reference §3 (EmailMessage)
        *_system(), FieldDef("FromAddress", "email", "From Address", 255), FieldDef("ToAddress", "string", "To Address", 4000),
        FieldDef("Subject", "string", "Subject", 3000), FieldDef("MessageDate", "datetime", "Message Date"),
        FieldDef("Incoming", "boolean", "Is Incoming", **ro_create),
        FieldDef("Status", "picklist", "Status", 40, picklist=EMAIL_STATUS, restricted=True, nillable=False),
        FieldDef("IsTracked", "boolean", "Is Tracked", **ro), FieldDef("FirstOpenedDate", "datetime", "First Opened", **ro),
        FieldDef("LastOpenedDate", "datetime", "Last Opened", **ro), FieldDef("IsBounced", "boolean", "Is Bounced", **ro),
        FieldDef("ActivityId", "reference", "Activity ID", 18, reference_to=("Task",), **ro_create),
        FieldDef("RelatedToId", "reference", "Related To ID", 18, reference_to=("Account", "Campaign"),
                 relationship="RelatedTo"),
    ]
    objs = {
        "Lead": lead, "Contact": contact, "Account": account, "User": user, "Group": group,
        "LeadStatus": lead_status, "Campaign": campaign, "CampaignMember": member,
        "CampaignMemberStatus": member_status, "Task": task, "Event": event,
        "EmailMessage": email_message, **_history_objects(),
    }
    return {name: _obj(name, fields) for name, fields in objs.items()}


#: LeadHistory/ContactHistory `Field` values: the tracked fields, plus the pseudo-fields Salesforce writes
#: for a record's creation and a Lead's conversion (object reference, LeadHistory).
HISTORY_FIELDS = ("created", "Status", "LeadSync_Stage__c", "OwnerId", "leadConverted", "leadMerged")


def _history_objects() -> dict[str, list[FieldDef]]:
    """Opportunity and the field-history objects (read-only: history rows are written by the org)."""
    ro = {"updateable": False, "createable": False}
    history = [
        FieldDef("Id", "id", "Record ID", 18, updateable=False, createable=False, nillable=False),
        FieldDef("IsDeleted", "boolean", "Deleted", **ro), FieldDef("CreatedDate", "datetime", "Created Date", **ro),
        FieldDef("CreatedById", "reference", "Created By ID", 18, reference_to=("User",), relationship="CreatedBy",
                 **ro),
        FieldDef("Field", "picklist", "Changed Field", 255, picklist=HISTORY_FIELDS, restricted=True, **ro),
        FieldDef("DataType", "picklist", "Data Type", 40, **ro),
        FieldDef("OldValue", "anyType", "Old Value", 255, **ro), FieldDef("NewValue", "anyType", "New Value", 255, **ro),
    ]
    parent = {"updateable": False, "createable": False, "nillable": False}
    opportunity = [
        *_system(), FieldDef("Name", "string", "Name", 120, nillable=False),
        FieldDef("AccountId", "reference", "Account ID", 18, reference_to=("Account",), relationship="Account"),
        FieldDef("ContactId", "reference", "Contact ID", 18, reference_to=("Contact",), relationship="Contact"),
        FieldDef("StageName", "picklist", "Stage", 255, nillable=False, picklist=OPPORTUNITY_STAGES),
        FieldDef("CloseDate", "date", "Close Date", nillable=False), FieldDef("Amount", "currency", "Amount"),
        FieldDef("IsClosed", "boolean", "Closed", **ro), FieldDef("IsWon", "boolean", "Won", **ro),
        FieldDef("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCE), _owner(),
    ]
    return {
        "Opportunity": opportunity,
        "LeadHistory": [*history, FieldDef("LeadId", "reference", "Lead ID", 18, reference_to=("Lead",),
                                           relationship="Lead", **parent)],
        "ContactHistory": [*history, FieldDef("ContactId", "reference", "Contact ID", 18, reference_to=("Contact",),
                                              relationship="Contact", **parent)],
    }

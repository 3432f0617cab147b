"""The property catalogue the emulator serves from the Properties API and validates writes against, and the
object types it stores (`OBJECT_TYPES`: names, required properties, defaults, association type ids) as data.

Definitions follow the create-response shape seen in real recorded responses
(reference §3.4); option values follow §3.1 (lifecycle) and §3.2 (lead status).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Default lifecycle stages in funnel order (reference §3.1); the index is the rank.
LIFECYCLE_STAGES: tuple[str, ...] = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
    "opportunity", "customer", "evangelist", "other",
)
LEAD_STATUSES: tuple[str, ...] = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING",
)
#: HubSpot's `numemployees` enumeration ranges, smallest first.
EMPLOYEE_RANGES: tuple[tuple[str, int], ...] = (
    ("1-5", 5), ("5-25", 25), ("25-50", 50), ("50-100", 100), ("100-500", 500), ("500-1000", 1000),
    ("1000-5000", 5000), ("5000-10000", 10000), ("10000+", 10**12),
)
TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
TASK_PRIORITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
TASK_TYPES = ("EMAIL", "CALL", "TODO", "LINKED_IN", "MEETING")
#: Call and email option values as HubSpot's calls and emails guides list them *(assumed: §4.3 of the reference
#: marks these names unverified)*.
CALL_STATUSES = ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS", "MISSED",
                 "NO_ANSWER", "QUEUED", "RINGING")
CALL_DIRECTIONS = ("INBOUND", "OUTBOUND")
EMAIL_DIRECTIONS = ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")
EMAIL_STATUSES = ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT")


@dataclass
class PropertyDef:
    """One property definition; `read_only` values are calculated by HubSpot and rejected on write."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group: str = "contactinformation"
    options: tuple[str, ...] = ()
    read_only: bool = False
    calculated: bool = False
    #: `hasUniqueValue`: the property can key `idProperty` reads, updates and upserts.
    unique: bool = False
    hubspot_defined: bool = True
    display_order: int = -1
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, stamp: str) -> dict[str, Any]:
        """The wire shape of GET /crm/v3/properties/{objectType}/{name}."""
        body: dict[str, Any] = {
            "updatedAt": stamp, "createdAt": stamp, "name": self.name, "label": self.label,
            "type": self.type, "fieldType": self.field_type, "description": self.description,
            "groupName": self.group,
            "options": [
                {"label": _label(v), "value": v, "displayOrder": i, "hidden": False}
                for i, v in enumerate(self.options)
            ],
            "displayOrder": self.display_order, "calculated": self.calculated, "externalOptions": False,
            "hasUniqueValue": self.unique, "hidden": False,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined, "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": not self.read_only, "dataSensitivity": "non_sensitive", "archived": False,
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        else:
            body["createdUserId"] = body["updatedUserId"] = "1"
        return body


def _label(value: str) -> str:
    return value.replace("_", " ").capitalize()


def _ro(name: str, type_: str = "string", group: str = "contactinformation", ft: str = "text") -> PropertyDef:
    return PropertyDef(name, _label(name), type_, ft, group, read_only=True, calculated=True)


def _dt(name: str, group: str = "contactinformation", read_only: bool = True) -> PropertyDef:
    return PropertyDef(name, _label(name), "datetime", "date", group, read_only=read_only)


# Plain writable text properties a real portal lists (kept short; each is a string on the wire).
_TEXT = (
    "email", "firstname", "lastname", "jobtitle", "company", "industry", "country", "phone", "mobilephone",
    "address", "city", "state", "zip", "website", "fax", "salutation", "message", "hs_additional_emails",
    "twitterhandle", "linkedinbio", "annualrevenue", "job_function", "seniority", "school", "degree",
    "field_of_study", "graduation_date", "military_status", "marital_status", "date_of_birth",
    "hs_language", "hs_persona", "hs_buying_role", "hs_timezone", "work_email", "ip_city", "ip_country",
)
#: The contact properties HubSpot's native Salesforce connector fills with the synced record's 18-char id.
SALESFORCE_ID_PROPERTIES = {"salesforceleadid": "Salesforce Lead ID", "salesforcecontactid": "Salesforce Contact ID"}
_ANALYTICS = (
    "hs_analytics_num_page_views", "hs_analytics_num_visits", "hs_analytics_num_event_completions",
    "hs_analytics_average_page_views", "hs_email_open", "hs_email_click", "hs_email_delivered",
    "hs_email_bounce", "num_conversion_events", "num_unique_conversion_events", "num_contacted_notes",
    "num_notes", "num_associated_deals",
)
_ANALYTICS_DATES = (
    "hs_analytics_last_visit_timestamp", "hs_analytics_first_visit_timestamp", "hs_email_last_open_date",
    "hs_email_last_click_date", "hs_email_last_send_date", "recent_conversion_date", "first_conversion_date",
    "notes_last_contacted", "notes_last_updated", "hs_last_sales_activity_timestamp",
    "engagements_last_meeting_booked", "hs_lastmodifieddate",
)


# Calculated properties a real portal also lists (read-only here); the type follows the name.
_CALCULATED = (
    "hs_analytics_source", "hs_analytics_source_data_1", "hs_analytics_source_data_2", "hs_analytics_first_url",
    "hs_analytics_last_url", "hs_analytics_first_referrer", "hs_analytics_last_referrer",
    "hs_analytics_first_timestamp", "hs_analytics_last_timestamp", "hs_analytics_revenue",
    "hs_latest_source", "hs_latest_source_data_1", "hs_latest_source_data_2", "hs_latest_source_timestamp",
    "hs_social_twitter_clicks", "hs_social_facebook_clicks", "hs_social_linkedin_clicks",
    "hs_social_num_broadcast_clicks", "hs_social_last_engagement", "hs_email_first_send_date",
    "hs_email_first_open_date", "hs_email_first_click_date", "hs_email_sends_since_last_engagement",
    "hs_email_quarantined", "hs_email_is_ineligible", "hs_emailconfirmationstatus", "hs_email_domain",
    "hs_sales_email_last_opened", "hs_sales_email_last_clicked", "hs_sales_email_last_replied",
    "hs_last_sales_activity_date", "hs_last_sales_activity_type", "hs_legal_basis", "hs_marketable_status",
    "hs_marketable_reason_id", "hs_marketable_reason_type", "hs_marketable_until_renewal",
    "hs_predictivecontactscore_v2", "hs_predictivescoringtier", "hubspotscore",
    "hs_time_to_first_engagement", "hs_time_to_move_from_lead_to_customer",
    "hs_time_to_move_from_subscriber_to_customer", "hs_time_to_move_from_marketingqualifiedlead_to_customer",
    "hs_time_to_move_from_opportunity_to_customer", "hs_time_to_move_from_salesqualifiedlead_to_customer",
    "hs_created_by_user_id", "hs_updated_by_user_id", "hs_all_owner_ids", "hs_all_team_ids",
    "hs_all_accessible_team_ids", "hubspot_team_id", "hubspot_owner_assigneddate", "hs_object_source",
    "hs_object_source_id", "hs_object_source_label", "hs_object_source_detail_1", "hs_merged_object_ids",
    "hs_calculated_merged_vids", "hs_calculated_phone_number", "hs_calculated_mobile_number",
    "hs_searchable_calculated_phone_number", "hs_ip_timezone", "ip_state", "ip_state_code", "ip_zipcode",
    "hs_linkedinid", "hs_twitterid", "twitterprofilephoto", "followercount", "linkedinconnections",
    "hs_avatar_filemanager_key", "associatedcompanyid", "associatedcompanylastupdated", "recent_deal_amount",
    "recent_deal_close_date", "total_revenue", "first_deal_created_date", "days_to_close",
    "hs_document_last_revisited", "hs_first_engagement_object_id", "hs_latest_meeting_activity",
    "hs_latest_sequence_enrolled", "hs_latest_sequence_enrolled_date", "hs_sequences_is_enrolled",
    "hs_sequences_actively_enrolled_count", "notes_next_activity_date", "hs_registered_member",
    "hs_membership_has_accessed_private_content", "hs_content_membership_status", "hs_currently_enrolled_in_prospecting_agent",
    "hs_first_outreach_date", "hs_last_sms_send_date", "hs_source_object_id", "hs_was_imported",
    "hs_is_contact", "hs_is_unworked", "hs_journey_stage", "hs_lifecyclestage_changed_date",
)


def _calculated(name: str) -> PropertyDef:
    """A read-only property typed by its name, as HubSpot's own names suggest."""
    if name.endswith(("_date", "_timestamp", "assigneddate", "lastupdated", "_revisited", "_activity")):
        return _dt(name, "analyticsinformation")
    if name.startswith(("num_", "hs_time_", "days_", "total_", "recent_deal_amount", "followercount",
                        "linkedinconnections", "hubspotscore", "hs_predictivecontactscore")) or name.endswith(
                            ("_clicks", "_count", "_revenue", "_since_last_engagement")):
        return _ro(name, "number", "analyticsinformation", "number")
    return _ro(name, group="analyticsinformation")


def contact_properties() -> list[PropertyDef]:
    """The default contact properties; `lifecyclestage` options are in rank order."""
    out = [PropertyDef(n, _label(n), unique=n == "email") for n in _TEXT]
    out += [
        _ro("hs_object_id", "number", ft="number"), _dt("createdate"), _dt("lastmodifieddate"),
        PropertyDef("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=LIFECYCLE_STAGES),
        PropertyDef("hs_lead_status", "Lead Status", "enumeration", "radio", options=LEAD_STATUSES),
        PropertyDef("numemployees", "Number of Employees", "enumeration", "select",
                    options=tuple(r for r, _ in EMPLOYEE_RANGES)),
        PropertyDef("hubspot_owner_id", "Contact owner", "enumeration", "select", "sales_properties"),
        PropertyDef("hs_email_optout", "Unsubscribed from all email", "bool", "booleancheckbox", "emailinformation",
                    options=("true", "false"), read_only=True),
        _ro("recent_conversion_event_name", group="conversioninformation"),
        _ro("first_conversion_event_name", group="conversioninformation"),
        _ro("hs_email_hard_bounce_reason_enum", group="emailinformation"),
        PropertyDef("hs_pipeline", "Pipeline", "enumeration", "select", read_only=True,
                    options=("contacts-lifecycle-pipeline",)),
    ]
    # The native Salesforce connector's ids (written by the integration; HubSpot marks them read-only *(assumed)*).
    out += [PropertyDef(name, label, group="salesforceinformation", read_only=True)
            for name, label in SALESFORCE_ID_PROPERTIES.items()]
    out += [_ro(n, "number", "analyticsinformation", "number") for n in _ANALYTICS]
    out += [_dt(n, "analyticsinformation") for n in _ANALYTICS_DATES]
    out += [_calculated(n) for n in _CALCULATED]
    for s in LIFECYCLE_STAGES:
        out += [_dt(f"hs_lifecyclestage_{s}_date"), _dt(f"hs_date_entered_{s}"), _dt(f"hs_date_exited_{s}"),
                _ro(f"hs_time_in_{s}", "number", ft="number")]
    return out


def _system(group: str) -> list[PropertyDef]:
    """The read-only properties every activity object has."""
    return [_ro("hs_object_id", "number", group, "number"), _dt("hs_createdate", group),
            _dt("hs_lastmodifieddate", group)]


def task_properties() -> list[PropertyDef]:
    """Task properties per reference §4.1; `hs_timestamp` is required on create."""
    return [
        PropertyDef("hs_timestamp", "Due date", "datetime", "date", "task"),
        PropertyDef("hs_task_subject", "Task Title", group="task"),
        PropertyDef("hs_task_body", "Notes", field_type="textarea", group="task"),
        PropertyDef("hs_task_status", "Task Status", "enumeration", "select", "task", options=TASK_STATUSES),
        PropertyDef("hs_task_priority", "Priority", "enumeration", "select", "task", options=TASK_PRIORITIES),
        PropertyDef("hs_task_type", "Task Type", "enumeration", "select", "task", options=TASK_TYPES),
        PropertyDef("hs_task_reminders", "Reminder", "string", "text", "task"),
        PropertyDef("hubspot_owner_id", "Assigned to", "enumeration", "select", "task"),
        _ro("hs_task_family", group="task"), _ro("hs_task_is_completed", "number", "task", "number"),
        *_system("task"), _ro("hs_pipeline", group="task"), _ro("hs_pipeline_stage", group="task"),
    ]


def meeting_properties() -> list[PropertyDef]:
    return [
        PropertyDef("hs_timestamp", "Activity date", "datetime", "date", "meeting"),
        PropertyDef("hs_meeting_title", "Meeting name", group="meeting"),
        PropertyDef("hs_meeting_body", "Meeting description", field_type="textarea", group="meeting"),
        PropertyDef("hs_meeting_start_time", "Start time", "datetime", "date", "meeting"),
        PropertyDef("hs_meeting_end_time", "End time", "datetime", "date", "meeting"),
        PropertyDef("hs_meeting_outcome", "Outcome", "enumeration", "select", "meeting",
                    options=("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED")),
        PropertyDef("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "meeting"),
        *_system("meeting"),
    ]


def note_properties() -> list[PropertyDef]:
    """Notes (reference §4.3: `hs_note_body` seen in a real response)."""
    return [
        PropertyDef("hs_timestamp", "Activity date", "datetime", "date", "note"),
        PropertyDef("hs_note_body", "Note body", field_type="textarea", group="note"),
        PropertyDef("hs_attachment_ids", "Attached file IDs", group="note"),
        PropertyDef("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "note"),
        *_system("note"),
    ]


def call_properties() -> list[PropertyDef]:
    """Logged calls; `hs_call_duration` is in milliseconds."""
    return [
        PropertyDef("hs_timestamp", "Activity date", "datetime", "date", "call"),
        PropertyDef("hs_call_title", "Call title", group="call"),
        PropertyDef("hs_call_body", "Call notes", field_type="textarea", group="call"),
        PropertyDef("hs_call_duration", "Call duration", "number", "number", "call"),
        PropertyDef("hs_call_status", "Call status", "enumeration", "select", "call", options=CALL_STATUSES),
        PropertyDef("hs_call_direction", "Call direction", "enumeration", "select", "call", options=CALL_DIRECTIONS),
        PropertyDef("hs_call_disposition", "Call outcome", group="call"),
        PropertyDef("hs_call_from_number", "From number", group="call"),
        PropertyDef("hs_call_to_number", "To number", group="call"),
        PropertyDef("hs_call_recording_url", "Recording URL", group="call"),
        PropertyDef("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "call"),
        *_system("call"),
    ]


def email_properties() -> list[PropertyDef]:
    """Logged one-to-one emails (sales activity, not marketing email events, reference §4.3)."""
    return [
        PropertyDef("hs_timestamp", "Activity date", "datetime", "date", "email"),
        PropertyDef("hs_email_subject", "Email subject", group="email"),
        PropertyDef("hs_email_text", "Email body", field_type="textarea", group="email"),
        PropertyDef("hs_email_html", "Email HTML body", field_type="textarea", group="email"),
        PropertyDef("hs_email_headers", "Email headers", field_type="textarea", group="email"),
        PropertyDef("hs_email_direction", "Email direction", "enumeration", "select", "email",
                    options=EMAIL_DIRECTIONS),
        PropertyDef("hs_email_status", "Email send status", "enumeration", "select", "email", options=EMAIL_STATUSES),
        PropertyDef("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "email"),
        *_system("email"),
    ]


def _crm_system(group: str) -> list[PropertyDef]:
    """The read-only properties every CRM object has (records, unlike activities, also carry an owner)."""
    return [*_system(group), PropertyDef("hubspot_owner_id", "Owner", "enumeration", "select", group)]


#: Company, deal and ticket option values as HubSpot's default pipelines and properties name them *(assumed: the
#: reference does not list them; these are the values of a new portal's default pipelines)*.
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent", "closedwon", "closedlost")
TICKET_STAGES = ("1", "2", "3", "4")  # New, Waiting on contact, Waiting on us, Closed (numeric ids)
COMMUNICATION_CHANNELS = ("SMS", "WHATS_APP", "LINKEDIN_MESSAGE", "PHYSICAL_MAIL", "CUSTOM_CHANNEL_CONVERSATION")


def company_properties() -> list[PropertyDef]:
    g = "companyinformation"
    return [
        *(PropertyDef(n, _label(n), group=g, unique=n == "domain") for n in (
            "name", "domain", "website", "phone", "address", "city", "state", "zip", "country", "industry",
            "description", "type", "linkedin_company_page", "timezone")),
        PropertyDef("numberofemployees", "Number of Employees", "number", "number", g),
        PropertyDef("annualrevenue", "Annual Revenue", "number", "number", g),
        PropertyDef("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", g, options=LIFECYCLE_STAGES),
        _dt("createdate", g), _ro("num_associated_contacts", "number", g, "number"),
        _ro("num_associated_deals", "number", g, "number"), *_crm_system(g),
    ]


def deal_properties() -> list[PropertyDef]:
    g = "dealinformation"
    return [
        PropertyDef("dealname", "Deal Name", group=g), PropertyDef("amount", "Amount", "number", "number", g),
        PropertyDef("dealstage", "Deal Stage", "enumeration", "radio", g, options=DEAL_STAGES),
        PropertyDef("pipeline", "Pipeline", "enumeration", "select", g, options=("default",)),
        PropertyDef("closedate", "Close Date", "datetime", "date", g),
        PropertyDef("dealtype", "Deal Type", "enumeration", "radio", g, options=("newbusiness", "existingbusiness")),
        PropertyDef("description", "Deal Description", field_type="textarea", group=g),
        _dt("createdate", g), _ro("hs_is_closed", "bool", g, "booleancheckbox"),
        _ro("hs_is_closed_won", "bool", g, "booleancheckbox"), _ro("days_to_close", "number", g, "number"),
        *_crm_system(g),
    ]


def ticket_properties() -> list[PropertyDef]:
    g = "ticketinformation"
    return [
        PropertyDef("subject", "Ticket name", group=g),
        PropertyDef("content", "Ticket description", field_type="textarea", group=g),
        PropertyDef("hs_pipeline", "Pipeline", "enumeration", "select", g, options=("0",)),
        PropertyDef("hs_pipeline_stage", "Ticket status", "enumeration", "select", g, options=TICKET_STAGES),
        PropertyDef("hs_ticket_priority", "Priority", "enumeration", "select", g, options=("LOW", "MEDIUM", "HIGH")),
        PropertyDef("hs_ticket_category", "Category", "enumeration", "checkbox", g,
                    options=("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY")),
        _dt("createdate", g), _dt("closed_date", g), *_crm_system(g),
    ]


def communication_properties() -> list[PropertyDef]:
    """Logged SMS, WhatsApp and LinkedIn messages (HubSpot's communications API)."""
    g = "communication"
    return [
        PropertyDef("hs_timestamp", "Activity date", "datetime", "date", g),
        PropertyDef("hs_communication_channel_type", "Channel type", "enumeration", "select", g,
                    options=COMMUNICATION_CHANNELS),
        PropertyDef("hs_communication_logged_from", "Logged from", "enumeration", "select", g, options=("CRM",)),
        PropertyDef("hs_communication_body", "Body", field_type="textarea", group=g),
        PropertyDef("hubspot_owner_id", "Activity assigned to", "enumeration", "select", g), *_system(g),
    ]


def _minimal(group: str, *names: tuple[str, str]) -> Callable[[], list[PropertyDef]]:
    """Properties of an object type leadsync never reads, enough for a peer's schema discovery."""
    def properties() -> list[PropertyDef]:
        return [*(PropertyDef(n, label, group=group) for n, label in names), *_system(group)]
    return properties


def product_properties() -> list[PropertyDef]:
    g = "productinformation"
    return [PropertyDef("name", "Name", group=g), PropertyDef("description", "Description", field_type="textarea",
                                                              group=g),
            PropertyDef("price", "Unit price", "number", "number", g), PropertyDef("hs_sku", "SKU", group=g),
            PropertyDef("hs_recurring_billing_period", "Term", group=g), _dt("createdate", g), *_system(g)]


def line_item_properties() -> list[PropertyDef]:
    g = "lineiteminformation"
    return [PropertyDef("name", "Name", group=g), PropertyDef("quantity", "Quantity", "number", "number", g),
            PropertyDef("price", "Unit price", "number", "number", g),
            PropertyDef("hs_product_id", "Product ID", "number", "number", g),
            _ro("amount", "number", g, "number"), _dt("createdate", g), *_system(g)]


def quote_properties() -> list[PropertyDef]:
    g = "quoteinformation"
    return [PropertyDef("hs_title", "Quote name", group=g), PropertyDef("hs_expiration_date", "Expiration date",
                                                                        "datetime", "date", g),
            PropertyDef("hs_status", "Quote approval status", "enumeration", "select", g,
                        options=("DRAFT", "APPROVAL_NOT_NEEDED", "PENDING_APPROVAL", "APPROVED", "REJECTED")),
            _dt("createdate", g), *_system(g)]


@dataclass(frozen=True)
class ObjectType:
    """One object type the portal stores, as data: the names peers use for it, what a create needs and gets."""

    name: str  #: plural: the store key and `/crm/v3/objects/{name}`
    singular: str  #: `/crm/v3/objects/{singular}` addresses the same store
    type_id: str  #: `0-1`, …: also accepted in URLs, and named in HubSpot's error messages
    label: str  #: association type names read back with `?associations=` are `{label}_to_{label}`
    properties: Callable[[], list[PropertyDef]]
    groups: tuple[str, ...]
    #: A create without these is a 400 ("Required properties to create records", HubSpot's Using Object APIs).
    required: tuple[str, ...] = ()
    #: Filled in by HubSpot when a create leaves them out.
    defaults: Mapping[str, str] = field(default_factory=dict)


OBJECT_TYPES: tuple[ObjectType, ...] = (
    ObjectType("contacts", "contact", "0-1", "contact", contact_properties,
               ("contactinformation", "emailinformation", "analyticsinformation", "conversioninformation",
                "sales_properties", "salesforceinformation")),
    ObjectType("tasks", "task", "0-27", "task", task_properties, ("task",), ("hs_timestamp",),
               {"hs_task_status": "NOT_STARTED", "hs_task_family": "SALES", "hs_task_is_completed": "0",
                "hs_task_priority": "NONE", "hs_task_type": "TODO"}),
    ObjectType("meetings", "meeting", "0-47", "meeting_event", meeting_properties, ("meeting",), ("hs_timestamp",)),
    ObjectType("notes", "note", "0-46", "note", note_properties, ("note",), ("hs_timestamp",)),
    ObjectType("calls", "call", "0-48", "call", call_properties, ("call",), ("hs_timestamp",)),
    ObjectType("emails", "email", "0-49", "email", email_properties, ("email",),
               ("hs_timestamp", "hs_email_direction")),
    # Standard CRM objects a portal always has (the sandbox seeds none of their records): the Properties API
    # (v3 and the legacy v1/v2 lists), list/search, and associations answer for them as for any object.
    ObjectType("companies", "company", "0-2", "company", company_properties, ("companyinformation",)),
    ObjectType("deals", "deal", "0-3", "deal", deal_properties, ("dealinformation",), ("dealname", "dealstage")),
    ObjectType("tickets", "ticket", "0-5", "ticket", ticket_properties, ("ticketinformation",),
               ("subject", "hs_pipeline_stage")),
    ObjectType("communications", "communication", "0-18", "communication", communication_properties,
               ("communication",), ("hs_timestamp",)),
    ObjectType("products", "product", "0-7", "product", product_properties, ("productinformation",), ("name",)),
    ObjectType("line_items", "line_item", "0-8", "line_item", line_item_properties, ("lineiteminformation",),
               ("name",)),
    ObjectType("quotes", "quote", "0-14", "quote", quote_properties, ("quoteinformation",), ("hs_title",)),
    # Types only peers' discovery asks for (Meltano's tap reads every stream's schema at start-up); object type
    # ids from HubSpot's object-type list (developers.hubspot.com/docs/guides/api/crm/understanding-the-crm).
    ObjectType("postal_mail", "postal_mail", "0-116", "postal_mail",
               _minimal("postal_mail", ("hs_timestamp", "Activity date"), ("hs_postal_mail_body", "Body")),
               ("postal_mail",)),
    ObjectType("feedback_submissions", "feedback_submission", "0-19", "feedback_submission",
               _minimal("feedbacksubmissioninformation", ("hs_survey_name", "Survey name")),
               ("feedbacksubmissioninformation",)),
    ObjectType("leads", "lead", "0-136", "lead", _minimal("leadinformation", ("hs_lead_name", "Lead name")),
               ("leadinformation",)),
    ObjectType("goal_targets", "goal_target", "0-74", "goal_target",
               _minimal("goal_target_information", ("hs_goal_name", "Goal name")), ("goal_target_information",)),
)
OBJECT_TYPE = {t.name: t for t in OBJECT_TYPES}
#: Singular names and type ids peers use for the same objects (`/crm/v3/objects/contact`, `0-1`).
OBJECT_ALIASES = {alias: t.name for t in OBJECT_TYPES for alias in (t.singular, t.type_id)}

#: Directional HUBSPOT_DEFINED association type ids, (from, to) -> id. Task ones were seen in real traffic
#: (reference §4.1); the other object→contact ones are listed in §4.2 ([unverified] there); contact→object
#: ones, and those between contacts, companies, deals, tickets and communications, are HubSpot's default
#: (unlabeled) table in its associations v4 guide *(assumed: the reference does not list them)*.
ASSOCIATION_TYPES = {
    ("tasks", "contacts"): 204, ("tasks", "companies"): 192, ("tasks", "deals"): 216,
    ("meetings", "contacts"): 200, ("notes", "contacts"): 202, ("calls", "contacts"): 194,
    ("emails", "contacts"): 198,
    ("contacts", "tasks"): 203, ("contacts", "meetings"): 199, ("contacts", "notes"): 201,
    ("contacts", "calls"): 193, ("contacts", "emails"): 197,
    ("contacts", "companies"): 279, ("companies", "contacts"): 280, ("deals", "contacts"): 3,
    ("contacts", "deals"): 4, ("contacts", "tickets"): 15, ("tickets", "contacts"): 16,
    ("deals", "companies"): 341, ("companies", "deals"): 342, ("communications", "contacts"): 81,
    ("contacts", "communications"): 82,
}


def employee_range(size: int | None) -> str | None:
    """The `numemployees` option a company of `size` falls into; None when unknown."""
    if size is None:
        return None
    return next(name for name, upper in EMPLOYEE_RANGES if size <= upper)

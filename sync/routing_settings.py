"""`[routing]` and `[alerts]` settings: validated once, with errors that name the rule, team or rep.

Webhook URLs and the SMTP password are `SecretStr`: they are dumped masked, never logged, and the alert
ledger names a target (`rep:maya:slack`) instead of storing its URL.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from mapping.model import Stage
from sync.route import Rep, RoutingPolicy, Rule, Team

CRMS = ("hubspot", "salesforce")


class AwaySpan(BaseModel):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> AwaySpan:
        if self.end < self.start:
            raise ValueError(f"away: end {self.end} is before start {self.start}")
        return self


class RepSettings(BaseModel):
    name: str = Field(min_length=1)
    hubspot_id: str | None = None  # HubSpot owner id (`GET /crm/v3/owners` → id, not userId)
    salesforce_id: str | None = None  # Salesforce User id (005…)
    email: str | None = None  # alerts by email go here
    slack_webhook: SecretStr | None = None  # alerts to this rep's own Slack channel / DM webhook
    manager: str | None = None  # a rep name: who hears of this rep's hand-offs past the SLA
    away: list[AwaySpan] = Field(default_factory=list)


class TeamSettings(BaseModel):
    name: str = Field(min_length=1)
    members: dict[str, int] = Field(default_factory=dict)  # rep name → round-robin weight
    slack_webhook: SecretStr | None = None  # the team's channel: every hand-off alert of the team
    escalation_webhook: SecretStr | None = None  # the team's channel for SLA escalations

    @field_validator("members")
    @classmethod
    def _weights(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [f"{k}={w}" for k, w in v.items() if not isinstance(w, int) or w < 1]
        if bad:
            raise ValueError(f"weights must be whole numbers ≥ 1: {', '.join(bad)}")
        return v


class RuleSettings(BaseModel):
    name: str = Field(min_length=1)
    team: str
    countries: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)  # names from `[routing.regions]`
    industries: list[str] = Field(default_factory=list)
    min_company_size: int | None = Field(None, ge=0)
    max_company_size: int | None = Field(None, ge=0)


class RoutingSettings(BaseModel):
    """Who owns a hand-off (see README, "Owner routing")."""

    enabled: bool = False
    keep_active_owner: bool = True
    reps: list[RepSettings] = Field(default_factory=list)
    teams: list[TeamSettings] = Field(default_factory=list)
    rules: list[RuleSettings] = Field(default_factory=list)
    regions: dict[str, list[str]] = Field(default_factory=dict)  # region name → countries
    fallback: str | None = None  # a rep name
    fallback_owner: dict[str, str] = Field(default_factory=dict)  # CRM → owner / queue id when nobody else
    #: CRM → stages at which leadsync may set the record's owner; never over an owner set by someone else.
    write_owner: dict[str, list[Stage]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> RoutingSettings:
        errors: list[str] = []
        reps = {r.name for r in self.reps}
        teams = {t.name for t in self.teams}
        for kind, names in (("rep", [r.name for r in self.reps]), ("team", [t.name for t in self.teams]),
                            ("rule", [r.name for r in self.rules])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                errors.append(f"{kind} names must be unique: {', '.join(dup)}")
        for r in self.reps:
            if not (r.hubspot_id or r.salesforce_id):
                errors.append(f"rep {r.name!r}: needs hubspot_id or salesforce_id")
            if r.manager and r.manager not in reps:
                errors.append(f"rep {r.name!r}: manager {r.manager!r} is not a rep")
        for t in self.teams:
            if not t.members:
                errors.append(f"team {t.name!r}: has no members")
            for m in t.members:
                if m not in reps:
                    errors.append(f"team {t.name!r}: member {m!r} is not a rep")
        for rule in self.rules:
            if rule.team not in teams:
                errors.append(f"rule {rule.name!r}: team {rule.team!r} is not defined")
            for region in rule.regions:
                if region not in self.regions:
                    errors.append(f"rule {rule.name!r}: region {region!r} is not in routing.regions")
            lo, hi = rule.min_company_size, rule.max_company_size
            if lo is not None and hi is not None and lo > hi:
                errors.append(f"rule {rule.name!r}: min_company_size {lo} is above max_company_size {hi}")
        if self.fallback and self.fallback not in reps:
            errors.append(f"fallback {self.fallback!r} is not a rep")
        for crm in [*self.fallback_owner, *self.write_owner]:
            if crm not in CRMS:
                errors.append(f"{crm!r} is not a CRM ({', '.join(CRMS)})")
        if errors:
            raise ValueError("routing: " + "; ".join(errors))
        return self

    def policy(self) -> RoutingPolicy:
        reps = {r.name: Rep(r.name, {c: i for c, i in (("hubspot", r.hubspot_id), ("salesforce", r.salesforce_id))
                                     if i}, tuple((a.start, a.end) for a in r.away)) for r in self.reps}
        teams = {t.name: Team(t.name, tuple(t.members.items())) for t in self.teams}
        rules = []
        for r in self.rules:
            countries = {c.strip().casefold() for c in r.countries}
            for region in r.regions:
                countries |= {c.strip().casefold() for c in self.regions[region]}
            rules.append(Rule(r.name, r.team, frozenset(countries), frozenset(i.strip().casefold() for i in r.industries),
                              r.min_company_size, r.max_company_size))
        return RoutingPolicy(reps, teams, tuple(rules), self.keep_active_owner, self.fallback,
                             dict(self.fallback_owner), {c: frozenset(s) for c, s in self.write_owner.items()})

    def rep(self, name: str | None) -> RepSettings | None:
        return next((r for r in self.reps if r.name == name), None)

    def team(self, name: str | None) -> TeamSettings | None:
        return next((t for t in self.teams if t.name == name), None)


class AlertSettings(BaseModel):
    """Alerts to a hand-off's owner, and SLA escalation (see README, "Alerts")."""

    enabled: bool = False
    slack_webhook: SecretStr | None = None  # the default channel, when neither rep nor team has one
    escalation_webhook: SecretStr | None = None  # the default channel for SLA escalations
    email: bool = True  # also email reps that have an address (needs smtp_host)
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    email_from: str = "leadsync@localhost"
    timeout_s: float = Field(10.0, gt=0, le=120)  # per connection / request: an alert never holds up a sync
    tries: int = Field(3, ge=1, le=10)  # per alert per run, on transient errors; then held for the next run
    max_attempts: int = Field(5, ge=1)  # runs an alert is tried in before it is held for a person
    sla_business_hours: float = Field(24.0, gt=0)  # the report's SLA definition (Mon–Fri, UTC)
    escalate: bool = True
    reroute_on_escalation: bool = False

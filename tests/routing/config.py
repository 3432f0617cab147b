"""A `leadsync.toml` routing / alerts section over the sandbox's seeded users (sandbox.seed.OWNERS)."""

from __future__ import annotations

from datetime import date, timedelta

from sandbox.seed import OWNERS

BY_NAME = {o.first_name.lower(): o for o in OWNERS}  # maya, jonas, aisha, leo, grace, diego, pat (inactive), ines


def rep_block(name: str, email: bool = False, webhook: str | None = None, manager: str | None = None,
              away_today: bool = False) -> str:
    o = BY_NAME[name]
    lines = ["[[routing.reps]]", f'name = "{name}"', f'hubspot_id = "{o.hubspot_id}"',
             f'salesforce_id = "{o.salesforce_id}"']
    if email:
        lines.append(f'email = "{o.email}"')
    if webhook:
        lines.append(f'slack_webhook = "{webhook}"')
    if manager:
        lines.append(f'manager = "{manager}"')
    if away_today:
        today = date.today()
        lines.append(f"away = [{{ start = {today - timedelta(days=1)}, end = {today + timedelta(days=3)} }}]")
    return "\n".join(lines) + "\n"


def routing_toml(team_webhook: str | None = None, escalation_webhook: str | None = None, smtp_port: int | None = None,
                 keep_active_owner: bool = False, write_owner: str = '["sql"]', weights: str = "maya = 2, jonas = 1, pat = 1, leo = 1",
                 extra: str = "") -> str:
    out = ["[routing]", "enabled = true", f"keep_active_owner = {'true' if keep_active_owner else 'false'}",
           'fallback = "grace"', f"write_owner = {{ salesforce = {write_owner} }}", ""]
    out += [rep_block("maya", email=True, manager="grace"), rep_block("jonas", manager="grace"), rep_block("pat"),
            rep_block("leo", away_today=True), rep_block("grace", email=True)]
    out += ["[[routing.teams]]", 'name = "inbound"', f"members = {{ {weights} }}"]
    if team_webhook:
        out.append(f'slack_webhook = "{team_webhook}"')
    if escalation_webhook:
        out.append(f'escalation_webhook = "{escalation_webhook}"')
    out += ["", "[[routing.rules]]", 'name = "everyone"', 'team = "inbound"', "", extra,
            "[alerts]", "enabled = true", "timeout_s = 2", "tries = 3"]
    if smtp_port:
        out += ['smtp_host = "127.0.0.1"', f"smtp_port = {smtp_port}", 'email_from = "leadsync@example-saas.com"']
    return "\n".join(out) + "\n"

"""The tenant one `leadsync` invocation works on, and how its commands open that tenant's settings and state.

`--tenant NAME` may come anywhere on the command line (`leadsync plan --tenant acme` or
`leadsync --tenant acme plan`); the top-level group moves it in front of the command before parsing, so
every command and sub-command takes it without each declaring it.
"""

from __future__ import annotations

from collections.abc import Sequence

from typer.core import TyperGroup

from sync.settings import Settings
from sync.state import State
from sync.tenants import DEFAULT, settings_for

_selected = [DEFAULT]


def select(name: str) -> None:
    _selected[0] = name


def tenant() -> str:
    return _selected[0]


def settings() -> Settings:
    """This invocation's tenant's settings (tenant `default`: the environment and leadsync.toml)."""
    return settings_for(tenant())


def state(of: Settings | None = None) -> State:
    """The tenant's own view of the state store its settings name."""
    return State((of or settings()).state_url, tenant=tenant())


def hoist_tenant(args: Sequence[str]) -> list[str]:
    """`--tenant X` / `--tenant=X` moved to the front: the top-level option, wherever it was typed.
    Nothing after a bare `--` is touched."""
    args = list(args)
    end = args.index("--") if "--" in args else len(args)
    head, rest = [], []
    i = 0
    while i < end:
        a = args[i]
        if a == "--tenant" and i + 1 < end:
            head = [a, args[i + 1]]
            i += 2
            continue
        if a.startswith("--tenant="):
            head = [a]
        else:
            rest.append(a)
        i += 1
    return head + rest + args[end:]


class TenantGroup(TyperGroup):
    """The `leadsync` group: `--tenant` is understood after the command name too."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]  # click's signature
        return super().parse_args(ctx, hoist_tenant(args))

"""Reading and writing scoring models as TOML.

Errors are for the marketer who edited the file: each names the file, the
line where it can be found, the rule by its id, and what was expected.
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scoring.schema import ModelError, ScoringModel

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.toml")
_SECTIONS = ("fit", "property", "engagement", "signal", "disqualifier")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
#: Rule keys written first, in this order, so a generated file reads like the hand-written one.
_KEY_ORDER = ("id", "group", "field", "column", "axis", "kind", "check", "url", "detail", "campaign")


def load_model(path: str | Path) -> ScoringModel:
    """Load and validate a model file; raises ModelError naming file, line and rule."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"{path}: cannot read scoring model ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:  # e.g. saved as Latin-1 or UTF-16 by an editor
        raise ModelError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                         "save the model as UTF-8") from None
    return loads_model(text, str(path))


def loads_model(text: str, source: str = "<model>") -> ScoringModel:
    """Parse and validate model text; `source` is the name errors report."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return ScoringModel.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(_describe(exc, raw, text, source)) from None


@cache
def default_model() -> ScoringModel:
    """The shipped model (`scoring/default_model.toml`), loaded once per process."""
    return load_model(DEFAULT_MODEL_PATH)


# --------------------------------------------------------------------------- error messages


def _line_index(text: str) -> dict[tuple[Any, ...], int]:
    """Line numbers of tables, array-of-table entries and keys, by their path in the document."""
    index: dict[tuple[Any, ...], int] = {}
    counts: dict[str, int] = {}
    current: tuple[Any, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[["):
            name = stripped[2:stripped.find("]]")].strip()
            nth = counts.get(name, 0)
            counts[name] = nth + 1
            current = (*name.split("."), nth)
        elif stripped.startswith("["):
            current = tuple(stripped[1:stripped.find("]")].strip().split("."))
        elif "=" in stripped and not stripped.startswith("#"):
            index.setdefault((*current, stripped.split("=", 1)[0].strip().strip("\"'")), number)
            continue
        else:
            continue
        index.setdefault(current, number)
    return index


def _locate(loc: tuple[Any, ...], index: dict[tuple[Any, ...], int], text: str, msg: str) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in index:
            return index[loc[:end]]
    named = re.search(r"rule '([^']+)'", msg)
    if named:
        rule_id = named.group(1)
        for number, line in enumerate(text.splitlines(), 1):
            if re.match(rf"""\s*id\s*=\s*["']{re.escape(rule_id)}["']""", line):
                return number
    return None


def _expected(err: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return f"missing required key {err['loc'][-1]!r}"
    if kind == "extra_forbidden":
        return f"unknown key {err['loc'][-1]!r} (misspelt?)"
    msg = msg.removeprefix("Value error, ").removeprefix("Input should be ")
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f", got {got!r}"
    return f"expected {msg}{shown}"


def _describe(exc: ValidationError, raw: dict[str, Any], text: str, source: str) -> str:
    index = _line_index(text)
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc)
        rule = ""
        if len(loc) >= 2 and loc[0] in _SECTIONS and isinstance(loc[1], int):
            entry = raw.get(loc[0], [])[loc[1]]
            rule_id = entry.get("id") if isinstance(entry, dict) else None
            rule = f"{loc[0]} rule {rule_id!r} " if rule_id else f"{loc[0]} rule #{loc[1] + 1} "
            where = ".".join(str(p) for p in loc[2:]) or "rule"
        line = _locate(loc, index, text, err["msg"])
        at = f"{source}:{line}" if line else source
        if not loc:  # whole-model checks already name the rule and the expectation
            lines.append(f"{at}: {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{at}: {rule}{where}: {_expected(err)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- writing


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(path: str, data: dict[str, Any], out: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_table_array(v)}
    out.extend(f"{_key(k)} = {_scalar(v)}" for k, v in scalars.items())
    for key, value in data.items():
        sub = f"{path}.{_key(key)}" if path else _key(key)
        if isinstance(value, dict):
            if any(not isinstance(v, dict) for v in value.values()):
                out.extend(["", f"[{sub}]"])
            _table(sub, value, out)
        elif _is_table_array(value):
            for item in value:
                out.extend(["", f"[[{sub}]]"])
                out.extend(f"{_key(k)} = {_scalar(item[k])}" for k in _ordered(item))


def _ordered(item: dict[str, Any]) -> list[str]:
    first = [k for k in _KEY_ORDER if k in item]
    return first + [k for k in item if k not in first]


def dump_model(model: ScoringModel, header: str = "") -> str:
    """The model as TOML that `loads_model` reads back to an equal model."""
    data = model.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    _table("", data, out)
    return "\n".join(out).lstrip("\n") + "\n"

"""Calibrating the model the scorer runs from the team's own outcomes, point in time.

An example is a (person, moment) pair; its label is whether the person reached an opportunity or
customer within `horizon_days` after the moment. Its features are what the scorer itself saw at that
moment: each of the model's rules' points (fit rules, engagement rules after their decay and caps),
plus candidate rules the model lacks (page views by URL section that only a catch-all rule counts
today, industry and country levels no fit rule covers). Nothing after the moment is read, and moments
after a person's outcome are not examples, so activity that followed a conversion can never flatter a
rule.

Validation is by time: train on the earlier moments whose labels were already known before the test
period started, test on the later moments; never by random rows.

Learned points keep each axis on the current model's scale (one least-squares factor per axis maps
regression weights to points), so the stage thresholds keep their meaning and the result is a plain
edit of the current model: the same TOML, the same rules with new points, and within a budget new
rules with a reason a rep can read. Signals, disqualifiers and thresholds are kept as they are.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from mapping.model import Contact, Engagement, EngagementKind
from scoring.backtest import Subject, _day_end, _utc
from scoring.calibrate import _slug, fit_logistic, roc_auc, top_decile_precision
from scoring.compiled import compiled, url_path
from scoring.loader import dump_model
from scoring.schema import ScoringModel
from scoring.scorer import score

_CAPS = {"fit_cap", "engagement_cap"}
_SECTIONED = (EngagementKind.PAGE_VIEW,)
_FIT_CANDIDATES = ("industry", "country")
_VERB = {EngagementKind.PAGE_VIEW: "viewed pages under"}


@dataclass(frozen=True, slots=True)
class HistorySettings:
    horizon_days: int = 90
    step_days: int = 14
    test_share: float = 0.3  # the latest share of moments is held out
    l2: float = 2.0
    max_new_rules: int = 8
    min_support: int = 30  # examples a candidate rule must touch to be considered


@dataclass(frozen=True)
class Example:
    subject: int
    moment: datetime
    label: int
    features: dict[str, float]
    fit: int
    engagement: int
    total: int


@dataclass(frozen=True)
class HistoryCalibration:
    model: ScoringModel
    toml: str
    train: int
    test: int
    positives_test: int
    split: date
    auc_current: float
    auc_learned: float
    top_decile_current: float
    top_decile_learned: float
    stage_moves: dict[str, int]
    changed_rules: dict[str, tuple[float, float]]
    new_rules: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"train_examples": self.train, "test_examples": self.test, "test_positives": self.positives_test,
                "split": self.split.isoformat(), "auc": {"current": _r(self.auc_current),
                                                         "learned": _r(self.auc_learned)},
                "top_decile_precision": {"current": _r(self.top_decile_current),
                                         "learned": _r(self.top_decile_learned)},
                "stage_moves": self.stage_moves,
                "changed_rules": {k: {"from": a, "to": b} for k, (a, b) in self.changed_rules.items()},
                "new_rules": list(self.new_rules), "model": self.model.label}


def _r(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


# --------------------------------------------------------------------------- examples


def _moments(s: Subject, start: date, last: date, step: int) -> list[date]:
    """Moments of one person: every `step` days from `start` while they exist and had no outcome yet."""
    first = _utc(s.first_seen).date() if s.first_seen is not None else start
    outcome = _utc(s.outcome_at).date() if s.outcome_at is not None else None
    out, d = [], start
    while d <= last:
        if d >= first and (outcome is None or outcome > d):
            out.append(d)
        d += timedelta(days=step)
    return out


def _section(detail: str) -> str:
    path = url_path(detail).strip("/").split("/", 1)[0]
    return path.casefold()[:40]


def _candidates(model: ScoringModel, contact: Contact, engagements: Sequence[Engagement], now: datetime,
                fitted_fields: set[str]) -> dict[str, float]:
    """Features for rules the model lacks: decayed counts of page sections only a catch-all counts,
    and fit levels no fit rule on that field matched."""
    cm = compiled(model)
    out: dict[str, float] = {}
    half = model.decay.half_life_days
    window = (model.decay.window_days or math.inf) * 86400.0
    now_ts = now.timestamp()
    for e in engagements:
        if e.kind not in _SECTIONED or not e.detail:
            continue
        age = now_ts - _utc(e.occurred_at).timestamp()
        if age < 0 or age > window:
            continue
        ri = cm.classify(e.kind, e.detail, e.campaign)[0]
        if ri >= 0 and model.engagement[ri].url is not None:
            continue  # a specific rule already counts it
        section = _section(e.detail)
        if section:
            key = f"eng|{e.kind}|{section}"
            out[key] = out.get(key, 0.0) + (0.5 ** (age / (half * 86400.0)) if half else 1.0)
    for name in _FIT_CANDIDATES:
        value = getattr(contact, name)
        if name not in fitted_fields and isinstance(value, str) and value.strip():
            out[f"fit|{name}|{value.strip()}"] = 1.0
    return out


def examples(model: ScoringModel, subjects: Sequence[Subject], start: date, end: date,
             settings: HistorySettings = HistorySettings()) -> list[Example]:
    """Every (person, moment) with a known label: the moment's horizon ends by `end`."""
    last = end - timedelta(days=settings.horizon_days)
    horizon = timedelta(days=settings.horizon_days)
    nominal = {r.id: abs(r.points) or 1.0 for r in (*model.fit, *model.properties, *model.engagement)}
    field_of = {r.id: r.field for r in model.fit}
    out: list[Example] = []
    for i, s in enumerate(subjects):
        for d in _moments(s, start, last, settings.step_days):
            moment = _day_end(d)
            result = score(model, s.contact, s.engagements, moment)
            feats = {f"rule|{r.rule}": r.points / nominal.get(r.rule, abs(r.points) or 1.0)
                     for r in result.reasons if r.rule not in _CAPS and r.points}
            fitted = {field_of[r.rule] for r in result.reasons if r.rule in field_of}
            feats.update(_candidates(model, s.contact, s.engagements, moment, fitted))
            label = int(s.outcome_at is not None and moment < _utc(s.outcome_at) <= moment + horizon)
            out.append(Example(i, moment, label, feats, result.fit, result.engagement, result.total))
    return out


# --------------------------------------------------------------------------- learning


def _split(exs: Sequence[Example], settings: HistorySettings) -> tuple[list[Example], list[Example], date]:
    """Test on the latest moments; train only on moments whose horizon closed before the test began."""
    moments = sorted({e.moment for e in exs})
    if len(moments) < 2:
        raise ValueError("history too short to split by time: need moments on at least two dates "
                         f"(step {settings.step_days} days, horizon {settings.horizon_days} days)")
    cut = moments[min(len(moments) - 1, max(1, int(len(moments) * (1 - settings.test_share))))]
    horizon = timedelta(days=settings.horizon_days)
    train = [e for e in exs if e.moment + horizon <= cut]
    test = [e for e in exs if e.moment >= cut]
    if not train:  # a short history: fall back to everything before the cut, and say the gap is gone
        train = [e for e in exs if e.moment < cut]
    return train, test, cut.date()


def _matrix(exs: Sequence[Example], columns: Sequence[str]) -> np.ndarray:
    index = {c: j for j, c in enumerate(columns)}
    x = np.zeros((len(exs), len(columns)))
    for i, e in enumerate(exs):
        for k, v in e.features.items():
            j = index.get(k)
            if j is not None:
                x[i, j] = v
    return x


def _axis_of(model: ScoringModel) -> dict[str, str]:
    axis = {r.id: "fit" for r in model.fit}
    axis.update({r.id: r.axis for r in model.properties})
    axis.update({r.id: "engagement" for r in model.engagement})
    return axis


def _scales(model: ScoringModel, weights: dict[str, float], support: Counter[str]) -> dict[str, float]:
    """Points per unit of regression weight, one per axis: the least-squares fit of current points."""
    points = {r.id: float(r.points) for r in (*model.fit, *model.properties, *model.engagement)}
    axis = _axis_of(model)
    out = {}
    for name in ("fit", "engagement"):
        ids = [k for k in weights if axis.get(k) == name and support[k]]
        num = sum(support[k] * points[k] * weights[k] for k in ids)
        den = sum(support[k] * weights[k] ** 2 for k in ids)
        out[name] = num / den if den > 0 and num > 0 else 10.0
    return out


def _candidate_rule(key: str, points: int) -> tuple[str, dict[str, object]]:
    """A proposed rule's section and TOML shape, with a reason a rep can read."""
    kind, a, b = key.split("|", 2)
    if kind == "eng":
        return "engagement", {"id": f"learned_{_slug(a)}_{_slug(b)}", "kind": a, "url": f"^/{_escape(b)}(/|$)",
                              "points": points, "reason": f"{_VERB.get(EngagementKind(a), a)} /{b}"}
    reason = f"works in {b}" if a == "industry" else f"based in {b}"
    return "fit", {"id": f"learned_{a}_{_slug(b)}", "field": a, "equals": b, "points": points, "reason": reason}


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in text)


def learn(model: ScoringModel, train: Sequence[Example], settings: HistorySettings = HistorySettings()
          ) -> tuple[ScoringModel, dict[str, tuple[float, float]], tuple[str, ...]]:
    """New points for the model's rules and, within the budget, proposed rules; same thresholds."""
    support = Counter(k for e in train for k in e.features)
    rules = sorted(k for k in support if k.startswith("rule|"))
    cands = sorted(k for k in support if not k.startswith("rule|") and support[k] >= settings.min_support)
    columns = rules + cands
    y = np.array([e.label for e in train], dtype=float)
    if not columns or y.min() == y.max():
        raise ValueError("no outcome variety in the training period: every example has the same label")
    _, coefs = fit_logistic(_matrix(train, columns), y, settings.l2)
    weights = dict(zip(columns, (float(c) for c in coefs), strict=True))
    ids = {k.split("|", 1)[1]: w for k, w in weights.items() if k.startswith("rule|")}
    scale = _scales(model, ids, Counter({k.split("|", 1)[1]: n for k, n in support.items()}))
    axis = _axis_of(model)
    data = model.model_dump(by_alias=True, exclude_defaults=True)
    changed: dict[str, tuple[float, float]] = {}
    for section in ("fit", "property", "engagement"):
        for rule in data.get(section, []):
            if rule["id"] not in ids:
                continue
            new = ids[rule["id"]] * scale[axis[rule["id"]]]
            new = round(new) if section != "engagement" else round(new, 1)
            if new != rule["points"]:
                changed[rule["id"]] = (rule["points"], new)
                if rule.get("cap") and rule["points"]:
                    rule["cap"] = max(1.0, round(abs(rule["cap"] * new / rule["points"]), 1))
                rule["points"] = new
    proposals = sorted(((weights[k] * math.sqrt(support[k]), k) for k in cands if weights[k] > 0), reverse=True)
    added: list[str] = []
    catch_all = {r.kind: i for i, r in enumerate(model.engagement) if r.url is None}
    for _, key in proposals[: settings.max_new_rules]:
        ax = "fit" if key.startswith("fit|") else "engagement"
        base = 0.0
        if ax == "engagement":
            kind = EngagementKind(key.split("|")[1])
            owner = next((model.engagement[i] for k, i in catch_all.items() if kind in k), None)
            base = float(owner.points) if owner is not None else 0.0
            points: float = round(base + weights[key] * scale[ax], 1)
        else:
            points = round(weights[key] * scale[ax])
        if points < 1:
            continue
        section, rule = _candidate_rule(key, points)  # type: ignore[arg-type]
        _insert(data, section, rule, model)
        added.append(str(rule["id"]))
    data["version"] = f"{model.version}+history"
    data["description"] = (f"{model.description} Points re-learned point in time from the team's outcomes."
                           ).strip()
    return ScoringModel.model_validate(data), changed, tuple(added)


def _insert(data: dict[str, object], section: str, rule: dict[str, object], model: ScoringModel) -> None:
    """A specific page rule goes before the catch-all that counts those pages today (first match wins)."""
    rules = list(data.get(section, []))  # type: ignore[call-overload]
    if section == "engagement":
        at = next((i for i, r in enumerate(rules) if rule["kind"] in _kinds(r) and not r.get("url")), len(rules))
        rules.insert(at, rule)
    else:
        rules.append(rule)
    data[section] = rules


def _kinds(rule: dict[str, object]) -> tuple[str, ...]:
    kind = rule.get("kind")
    return (kind,) if isinstance(kind, str) else tuple(kind or ())  # type: ignore[arg-type]


def calibrate_history(model: ScoringModel, subjects: Sequence[Subject], start: date, end: date,
                      settings: HistorySettings = HistorySettings()) -> HistoryCalibration:
    """Learn on earlier moments, compare current and learned models on the later ones, count stage moves."""
    exs = examples(model, subjects, start, end, settings)
    if not exs:
        raise ValueError(f"no examples: nobody was in the funnel between {start} and "
                         f"{end - timedelta(days=settings.horizon_days)} with a known {settings.horizon_days}-day "
                         "outcome")
    train, test, split = _split(exs, settings)
    learned, changed, added = learn(model, train, settings)
    y = np.array([e.label for e in test], dtype=float)
    current = np.array([e.total for e in test], dtype=float)
    relearned = np.array([score(learned, subjects[e.subject].contact, subjects[e.subject].engagements,
                                e.moment).total for e in test], dtype=float)
    as_of = _day_end(end)
    moves: Counter[str] = Counter()
    for s in subjects:
        if s.outcome_at is not None and _utc(s.outcome_at) <= as_of:
            continue  # sales has them: no model moves them any more
        a = score(model, s.contact, s.engagements, as_of).stage
        b = score(learned, s.contact, s.engagements, as_of).stage
        if a != b:
            moves[f"{a.value}->{b.value}"] += 1
    header = (f"calibrated point in time from {len(train):,} earlier examples; held-out AUC "
              f"{roc_auc(relearned, y):.3f} vs {roc_auc(current, y):.3f} for {model.label}")
    return HistoryCalibration(learned, dump_model(learned, header), len(train), len(test), int(y.sum()), split,
                              roc_auc(current, y), roc_auc(relearned, y), top_decile_precision(current, y),
                              top_decile_precision(relearned, y), dict(sorted(moves.items())), changed, added)

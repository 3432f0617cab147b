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
from scoring.calibrate import MISSING, _slug, fit_logistic, roc_auc, top_decile_precision
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
    horizon_days: int = 60
    step_days: int = 7
    test_share: float = 0.3  # the latest share of moments is held out
    l2: float = 50.0  # how hard a rule's points are held at the current model's
    max_new_rules: int = 8
    min_support: int = 30  # examples a candidate rule must touch to be considered ...
    min_positive: int = 10  # ... and of them, examples that reached an outcome


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
    blank = {v.strip().casefold() for v in (*model.missing_values, *MISSING)}
    for name in _FIT_CANDIDATES:
        value = getattr(contact, name)
        if name not in fitted_fields and isinstance(value, str) and value.strip().casefold() not in blank:
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
    """Train on the earlier moments, test on the later ones; a train moment's horizon closes before the test
    period opens, so no training label was decided inside it.

    The cut is the moment that leaves about `test_share` of the positive examples to the test side: outcomes
    are rarely spread evenly over a history (a young portal, a seasonal business), and a split by calendar
    alone can leave one side with nothing to learn or to measure.
    """
    horizon = timedelta(days=settings.horizon_days)
    moments = sorted({e.moment for e in exs})
    positives = Counter(e.moment for e in exs if e.label)
    best: tuple[float, datetime] | None = None
    for cut in moments[1:]:
        train = sum(n for m, n in positives.items() if m + horizon <= cut)
        test = sum(n for m, n in positives.items() if m >= cut)
        if train and test:
            gap = abs(test / (train + test) - settings.test_share)
            if best is None or gap < best[0]:
                best = (gap, cut)
    if best is None:
        raise ValueError(f"history too short to split by time: no cut leaves outcomes on both sides "
                         f"(step {settings.step_days} days, horizon {settings.horizon_days} days); "
                         "try a shorter --horizon or a longer --since")
    cut = best[1]
    train = [e for e in exs if e.moment + horizon <= cut]
    test = [e for e in exs if e.moment >= cut]
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
    """New points for the model's rules and, within the budget, proposed rules; same thresholds.

    The current model is the prior: the regression gets its total score as a free column, and each rule's
    activation and each candidate's as penalised corrections to it. So a rule's points move only as far as
    the outcomes insist, and weight `w` on a rule means `w / a` points, `a` being the weight per point of
    the current score: the learned model stays on the current scale.
    """
    support = Counter(k for e in train for k in e.features)
    positive = Counter(k for e in train if e.label for k in e.features)
    own = {r.id for r in (*model.fit, *model.properties, *model.engagement)}
    rules = sorted(k for k in support if k.startswith("rule|") and k[5:] in own)
    cands = sorted(k for k in support if not k.startswith("rule|") and support[k] >= settings.min_support
                   and positive[k] >= settings.min_positive)
    columns = rules + cands
    y = np.array([e.label for e in train], dtype=float)
    if y.min() == y.max():
        raise ValueError("no outcome variety in the training period: every example has the same label")
    x = np.hstack([np.array([[e.total / 10.0] for e in train]), _matrix(train, columns)])
    penalty = np.full(x.shape[1], settings.l2)
    penalty[0] = 0.0
    penalty[1 + len(rules):] *= 2  # a new rule needs stronger evidence than a change to an existing one
    _, coefs = fit_logistic(x, y, penalty)
    per_point = float(coefs[0]) / 10.0
    if per_point <= 0:
        raise ValueError("the current model's score does not rank the training period's outcomes at all; "
                         "there is nothing to calibrate its points from")
    shift = {k: float(c) / per_point for k, c in zip(columns, coefs[1:], strict=True)}
    data = model.model_dump(by_alias=True, exclude_defaults=True)
    changed: dict[str, tuple[float, float]] = {}
    learned: dict[str, float] = {}
    for section in ("fit", "property", "engagement"):
        for rule in data.get(section, []):
            delta = shift.get(f"rule|{rule['id']}")
            if delta is None:
                continue
            old = rule["points"]
            new = round(old + delta) if section != "engagement" else round(old + delta, 1)
            learned[rule["id"]] = new
            if new != old:
                changed[rule["id"]] = (old, new)
                if rule.get("cap") and old and new and (old > 0) == (new > 0):
                    rule["cap"] = max(1.0, round(abs(rule["cap"] * new / old), 1))
                rule["points"] = new
    proposals = sorted(((shift[k] * math.sqrt(support[k]), k) for k in cands if shift[k] > 0), reverse=True)
    added: list[str] = []
    catch_all = [r for r in model.engagement if r.url is None and r.detail is None and r.campaign is None]
    for _, key in proposals[: settings.max_new_rules]:
        if key.startswith("fit|"):
            points: float = round(shift[key])
        else:
            kind = EngagementKind(key.split("|")[1])
            owner = next((r for r in catch_all if kind in r.kind), None)
            base = learned.get(owner.id, float(owner.points)) if owner is not None else 0.0
            points = round(base + shift[key], 1)
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

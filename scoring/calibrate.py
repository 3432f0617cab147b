"""Calibrating a scorecard from historical outcomes.

Why a scorecard and not a black box: the result must be an ordinary scoring
model (integer points with reasons) that marketing can read, edit and ship,
and that the same scorer runs. So: bin each feature (quantile bins for
numbers, cleaned levels for categories, "missing" as a level of its own), fit
an L2-regularised logistic regression on the one-hot bins, turn coefficients
into integer points (a fixed number of points doubles the odds), and merge
equal-point bins into one rule each. Quality is reported as stratified k-fold
cross-validated ROC AUC and top-decile precision of the *integer* model, as
scored by `scoring.score`, not of the floating-point regression.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mapping.model import Contact
from scoring.compiled import to_number
from scoring.loader import dump_model
from scoring.schema import ScoringModel
from scoring.scorer import score

#: Values a form or export uses for "not answered". `Select` is a common dropdown default.
MISSING = ("", "select", "nan", "n/a", "null")
_TRUE = {"1", "1.0", "true", "yes", "y", "converted", "won"}
_FALSE = {"0", "0.0", "false", "no", "n", "lost"}
#: Scoring a table has no engagement history, so `now` only has to be fixed to be deterministic.
_TABLE_NOW = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: Coarsest points scale used to meet a rule budget; below it, weak rules are dropped instead.
_MIN_PDO = 2.0


class CalibrationError(ValueError):
    """The table cannot be calibrated (missing column, one class only, …); the message says which."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Knobs of the scorecard fit; the defaults are what the benchmark uses."""

    folds: int = 5
    max_rules: int = 40
    seed: int = 0
    bins: int = 10  # quantile bins per numeric feature (fewer when values repeat)
    min_level_share: float = 0.005  # rarer categorical levels are pooled into "other"
    min_level_rows: int = 20
    l2: float = 2.0  # ridge penalty on bin coefficients
    points_to_double: float = 20.0  # starting scale; coarsened until the rule budget is met


@dataclass(frozen=True)
class CalibrationResult:
    model: ScoringModel
    toml: str
    auc: float  # mean over folds of out-of-fold ROC AUC
    top_decile_precision: float  # mean over folds: share of positives among the top 10% by score
    rules: int
    rows: int
    positives: int
    features: tuple[str, ...]
    fold_auc: tuple[float, ...] = field(default=())
    points_to_double: float = 0.0

    @property
    def base_rate(self) -> float:
        return self.positives / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"auc": round(self.auc, 4), "top_decile_precision": round(self.top_decile_precision, 4),
                "rules": self.rules, "rows": self.rows, "positives": self.positives,
                "base_rate": round(self.base_rate, 4), "features": list(self.features),
                "fold_auc": [round(a, 4) for a in self.fold_auc], "points_to_double": self.points_to_double,
                "model": self.model.label}


# --------------------------------------------------------------------------- reading values


def _clean(value: Any) -> str | None:
    """Trimmed text, or None for anything that means 'not answered'."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text.casefold() in MISSING else text


def _label(value: Any, column: str) -> int | None:
    text = _clean(value)
    if text is None:
        return None
    folded = text.casefold()
    if folded in _TRUE:
        return 1
    if folded in _FALSE:
        return 0
    raise CalibrationError(f"label column {column!r}: expected 1/0, yes/no or true/false, got {text!r}")


def _is_numeric(values: Sequence[str | None]) -> bool:
    present = [v for v in values if v is not None]
    parsed = sum(to_number(v) is not None for v in present)
    return bool(present) and parsed >= 0.98 * len(present) and len(set(present)) > 5


# --------------------------------------------------------------------------- binning


@dataclass(frozen=True, slots=True)
class Bin:
    """One level of one feature: a numeric range [low, high), a set of category keys, or missing."""

    low: float = -math.inf
    high: float = math.inf
    keys: tuple[str, ...] = ()
    other: bool = False
    missing: bool = False


@dataclass(frozen=True, slots=True)
class Feature:
    column: str
    numeric: bool
    bins: tuple[Bin, ...]
    names: Mapping[str, str]  # category key -> display name (most common spelling)

    def index(self, text: str | None) -> int:
        """Which bin a cleaned value falls in (the last bin is always 'missing')."""
        if text is None:
            return len(self.bins) - 1
        if self.numeric:
            x = to_number(text)
            if x is None:
                return len(self.bins) - 1
            return next(i for i, b in enumerate(self.bins) if b.low <= x < b.high)
        key = text.casefold()
        for i, b in enumerate(self.bins):
            if key in b.keys:
                return i
        return next(i for i, b in enumerate(self.bins) if b.other)


def _numeric_feature(column: str, values: Sequence[str | None], n_bins: int) -> Feature:
    xs = np.array([x for x in (to_number(v) for v in values) if x is not None], dtype=float)
    cuts = np.unique(np.quantile(xs, np.arange(1, n_bins) / n_bins, method="higher")) if len(xs) else []
    cuts = [float(c) for c in cuts if c > xs.min()]
    edges = [-math.inf, *cuts, math.inf]
    bins = tuple(Bin(low=lo, high=hi) for lo, hi in zip(edges, edges[1:], strict=False))
    return Feature(column, True, (*bins, Bin(missing=True)), {})


def _categorical_feature(column: str, values: Sequence[str | None], min_rows: int) -> Feature:
    spellings: dict[str, Counter[str]] = {}
    for v in values:
        if v is not None:
            spellings.setdefault(v.casefold(), Counter())[v] += 1
    counts = {k: sum(c.values()) for k, c in spellings.items()}
    kept = sorted((k for k, n in counts.items() if n >= min_rows), key=lambda k: (-counts[k], k))
    names = {k: spellings[k].most_common(1)[0][0] for k in spellings}
    bins = tuple(Bin(keys=(k,)) for k in kept)
    return Feature(column, False, (*bins, Bin(other=True), Bin(missing=True)), names)


def _features(table: dict[str, list[str | None]], settings: Settings) -> list[Feature]:
    n = len(next(iter(table.values()), []))
    min_rows = max(settings.min_level_rows, int(settings.min_level_share * n))
    return [_numeric_feature(c, vs, settings.bins) if _is_numeric(vs) else _categorical_feature(c, vs, min_rows)
            for c, vs in table.items()]


def _design(features: Sequence[Feature], table: dict[str, list[str | None]], rows: np.ndarray) -> np.ndarray:
    """One-hot matrix of the given rows: one column per bin of every feature."""
    width = sum(len(f.bins) for f in features)
    x = np.zeros((len(rows), width))
    offset = 0
    for f in features:
        values = table[f.column]
        for r, row in enumerate(rows):
            x[r, offset + f.index(values[row])] = 1.0
        offset += len(f.bins)
    return x


# --------------------------------------------------------------------------- regression


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float | np.ndarray, iterations: int = 50
                 ) -> tuple[float, np.ndarray]:
    """L2-regularised logistic regression by Newton's method; the intercept is not penalised.

    `l2` is one penalty for every column, or one per column (0 leaves a column free)."""
    n, p = x.shape
    xa = np.hstack([np.ones((n, 1)), x])
    penalty = np.zeros(p + 1)
    penalty[1:] = l2
    rate = min(max(y.mean(), 1e-6), 1 - 1e-6)
    w = np.zeros(p + 1)
    w[0] = math.log(rate / (1 - rate))
    for _ in range(iterations):
        prob = 1.0 / (1.0 + np.exp(-(xa @ w)))
        grad = xa.T @ (prob - y) + penalty * w
        hess = (xa * (prob * (1 - prob))[:, None]).T @ xa + np.diag(penalty) + 1e-9 * np.eye(p + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(w[0]), w[1:]


# --------------------------------------------------------------------------- coefficients -> rules


def _fmt(x: float) -> str:
    return f"{x:g}"


def human_name(column: str) -> str:
    """A column name as words for a reason reps read: "TotalVisits" → "total visits", "Lead_Source" → "lead
    source"; acronyms ("ID", "URL") keep their capitals."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", column)
    words = [w for w in re.split(r"[\s_.]+", spaced) if w]
    return " ".join(w if len(w) > 1 and w.isupper() else w.lower() for w in words) or column


def _range_text(column: str, low: float, high: float) -> str:
    name = human_name(column)
    if low == -math.inf:
        return f"{name} below {_fmt(high)}"
    if high == math.inf:
        return f"{name} {_fmt(low)} or more"
    return f"{name} {_fmt(low)} to under {_fmt(high)}"


def _slug(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in text.casefold())
    return "_".join(p for p in out.split("_") if p)[:40]


def _feature_points(coefs: np.ndarray, scale: float, missing_seen: bool = True) -> list[int]:
    """Integer points per bin, shifted so "not given" (the last bin) scores 0 and needs no rule: an unanswered
    field never earns points, and a level that converts worse than silence reads as negative points. The
    shift is the same for every row, so the ranking is the regression's. A feature never missing in the
    training rows has no "not given" to measure: its weakest level scores 0 instead."""
    points = [int(round(c * scale)) for c in coefs]
    reference = points[-1] if missing_seen else min(points[:-1], default=0)
    shifted = [p - reference for p in points]
    shifted[-1] = 0
    return shifted


def _feature_rules(f: Feature, points: Sequence[int]) -> list[dict[str, Any]]:
    """Rules for one feature: equal-point categories share one rule, adjacent equal ranges merge."""
    rules: list[dict[str, Any]] = []
    base = _slug(f.column)
    if f.numeric:
        ranges = [(b, p) for b, p in zip(f.bins[:-1], points[:-1], strict=True)]
        merged: list[list[Any]] = []
        for b, p in ranges:
            if merged and merged[-1][2] == p:
                merged[-1][1] = b.high
            else:
                merged.append([b.low, b.high, p])
        for low, high, p in merged:
            if p:
                rule: dict[str, Any] = {"id": f"{base}_{len(rules) + 1}", "column": f.column, "points": p,
                                        "reason": _range_text(f.column, low, high), "group": base}
                if low != -math.inf:
                    rule["min"] = low
                if high != math.inf:
                    rule["max"] = high
                rules.append(rule)
    else:
        by_points: dict[int, list[str]] = {}
        for b, p in zip(f.bins[:-2], points[:-2], strict=True):
            by_points.setdefault(p, []).append(f.names[b.keys[0]])
        name = human_name(f.column)
        for p, names in sorted(by_points.items(), key=lambda kv: -kv[0]):
            if p:
                rules.append({"id": f"{base}_{len(rules) + 1}", "column": f.column, "in": names, "points": p,
                              "reason": f"{name}: {', '.join(names)}", "group": base})
        other = points[-2]
        if other:
            known = [f.names[b.keys[0]] for b in f.bins[:-2]]
            rules.append({"id": f"{base}_other", "column": f.column, "not_in": known, "points": other,
                          "reason": f"{name}: another value", "group": base})
    return rules  # "not given" scores 0 by construction (`_feature_points`): no rule for it


def _stage_thresholds(totals: np.ndarray) -> dict[str, Any]:
    """Lead for everyone scored, MQL for the top 30%, SQL for the top 10% of the training scores."""
    def at(q: float) -> int:
        return int(np.quantile(totals, q, method="higher"))

    low = int(totals.min()) if len(totals) else 0
    mql = max(at(0.70), low + 1)
    return {"lead": {"total": low}, "mql": {"total": mql}, "sql": {"total": max(at(0.90), mql + 1)}}


def _build_model(features: Sequence[Feature], points: Sequence[Sequence[int]], meta: str) -> ScoringModel:
    rules = [rule for f, pts in zip(features, points, strict=True) for rule in _feature_rules(f, pts)]
    return ScoringModel.model_validate({
        "name": "calibrated", "version": "1", "description": meta, "missing_values": list(MISSING),
        "stages": {"mql": {"total": 1}, "sql": {"total": 2}}, "property": rules,
    })


def _rule_count(features: Sequence[Feature], points: Sequence[Sequence[int]]) -> int:
    return sum(len(_feature_rules(f, pts)) for f, pts in zip(features, points, strict=True))


def _prune(points: list[list[int]], support: Sequence[np.ndarray]) -> None:
    """Zero the least important point value of any feature (|points| × rows it applies to), in place."""
    candidates = []
    for fi, (pts, sup) in enumerate(zip(points, support, strict=True)):
        for value in set(pts) - {0}:
            rows = sum(float(s) for p, s in zip(pts, sup, strict=True) if p == value)
            candidates.append((abs(value) * rows, fi, value))
    _, fi, value = min(candidates)
    points[fi] = [0 if p == value else p for p in points[fi]]


def _with_thresholds(model: ScoringModel, totals: np.ndarray) -> ScoringModel:
    data = model.model_dump(by_alias=True, exclude_defaults=True)
    data["stages"] = _stage_thresholds(totals)
    return ScoringModel.model_validate(data)


# --------------------------------------------------------------------------- metrics


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann–Whitney AUC with ties counted as half."""
    pos = int(labels.sum())
    neg = len(labels) - pos
    if not pos or not neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def top_decile_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of positives in the top 10% by score; ties at the cut count in proportion (no lucky order)."""
    k = max(1, math.ceil(len(scores) / 10))
    cut = np.sort(scores)[::-1][k - 1]
    above = scores > cut
    at = scores == cut
    need = k - int(above.sum())
    hits = labels[above].sum() + need * labels[at].mean()
    return float(hits / k)


# --------------------------------------------------------------------------- the pipeline


def _table(rows: Iterable[Mapping[str, Any]], label: str, features: Sequence[str]
           ) -> tuple[dict[str, list[str | None]], np.ndarray, list[Mapping[str, Any]]]:
    kept_rows: list[Mapping[str, Any]] = []
    labels: list[int] = []
    for i, row in enumerate(rows):
        if i == 0:
            absent = [c for c in (label, *features) if c not in row]
            if absent:
                raise CalibrationError(f"no column {', '.join(map(repr, absent))}; columns are {list(row)}")
        y = _label(row.get(label), label)
        if y is not None:
            kept_rows.append(row)
            labels.append(y)
    y_arr = np.array(labels, dtype=float)
    if len(kept_rows) < 20 or y_arr.min(initial=0) == y_arr.max(initial=0):
        raise CalibrationError(f"label {label!r}: need at least 20 labelled rows with both outcomes")
    table = {c: [_clean(r.get(c)) for r in kept_rows] for c in features}
    return table, y_arr, kept_rows


def _stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % folds
    return fold


def _fit(table: dict[str, list[str | None]], y: np.ndarray, rows: np.ndarray, settings: Settings,
         meta: str) -> tuple[ScoringModel, int, float]:
    """Fit bins, regression and points on `rows`; then meet the rule budget, first by coarser
    points (down to `_MIN_PDO` points per doubling of the odds), then by dropping the weakest rules."""
    features = _features({c: [vs[i] for i in rows] for c, vs in table.items()}, settings)
    x = _design(features, table, rows)
    _, coefs = fit_logistic(x, y[rows], settings.l2)
    bounds = np.cumsum([0, *(len(f.bins) for f in features)])
    coefs_by_feature = [coefs[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    pdo = settings.points_to_double
    seen = [bool(x[:, b - 1].sum()) for b in bounds[1:]]  # whether each feature's "not given" bin has rows
    while True:
        points = [_feature_points(c, pdo / math.log(2.0), m) for c, m in zip(coefs_by_feature, seen, strict=True)]
        if _rule_count(features, points) <= settings.max_rules or pdo / 1.25 < _MIN_PDO:
            break
        pdo /= 1.25
    support = [x[:, a:b].sum(axis=0) for a, b in zip(bounds, bounds[1:], strict=False)]
    while _rule_count(features, points) > settings.max_rules:
        _prune(points, support)
    return _build_model(features, points, meta), _rule_count(features, points), pdo


#: Table columns that fill the Contact's own fields (matched case-insensitively), so fit rules apply too.
_CONTACT_FIELDS = ("email", "title", "company", "industry", "country", "lead_status")


def _contact(i: int, row: Mapping[str, Any], id_column: str | None = None) -> Contact:
    """A row as a Contact: every column in `extra`, well-known columns also as fields."""
    ident = str(row.get(id_column) or i) if id_column else str(i)
    extra = {k: None if v is None else str(v) for k, v in row.items()}
    by_name = {k.strip().casefold(): v for k, v in extra.items()}
    fields: dict[str, Any] = {f: _clean(by_name.get(f)) for f in _CONTACT_FIELDS if by_name.get(f)}
    size = to_number(_clean(by_name.get("company_size")))
    if size is not None:
        fields["company_size"] = int(size)
    return Contact(source="table", id=ident, extra=extra, **fields)


def _totals(model: ScoringModel, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Totals as the scorer computes them; calibrated rules read only `extra`, so rows go in as they are."""
    return np.array([score(model, Contact(source="table", id=str(i), extra=r), (), _TABLE_NOW).total
                     for i, r in enumerate(rows)], dtype=float)


def calibrate_rows(rows: Iterable[Mapping[str, Any]], label: str, features: Sequence[str], *, folds: int = 5,
                   max_rules: int = 40, seed: int = 0, source: str = "rows",
                   settings: Settings | None = None) -> CalibrationResult:
    """Calibrate a scorecard model from labelled rows (dicts of column -> value)."""
    settings = settings or Settings(folds=folds, max_rules=max_rules, seed=seed)
    table, y, kept = _table(rows, label, list(features))
    fold = _stratified_folds(y, settings.folds, settings.seed)
    aucs, precisions = [], []
    for k in range(settings.folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model, _, _ = _fit(table, y, train, settings, "cross-validation fold")
        totals = _totals(model, [kept[i] for i in test])
        aucs.append(roc_auc(totals, y[test]))
        precisions.append(top_decile_precision(totals, y[test]))
    auc, precision = float(np.mean(aucs)), float(np.mean(precisions))
    everything = np.arange(len(y))
    meta = (f"Calibrated scorecard: {label} from {source}, {len(y)} rows, base rate {y.mean():.3f}; "
            f"{settings.folds}-fold CV ROC AUC {auc:.3f}, top-decile precision {precision:.3f}.")
    model, n_rules, pdo = _fit(table, y, everything, settings, meta)
    model = _with_thresholds(model, _totals(model, kept))
    header = "\n".join([
        meta,
        f"Features: {', '.join(features)}.",
        f"Points: {pdo:g} points double the odds of {label}; \"not given\" scores 0 (a level below it, negative points).",
        "Stages from the score distribution: MQL = top 30%, SQL = top 10% of the calibration rows.",
    ])
    return CalibrationResult(model, dump_model(model, header), auc, precision, n_rules, len(y), int(y.sum()),
                             tuple(features), tuple(aucs), pdo)


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def calibrate_csv(path: str | Path, label: str, features: list[str], *, folds: int = 5, max_rules: int = 40,
                  seed: int = 0) -> CalibrationResult:
    """Calibrate from a CSV file of historical leads with a 0/1 outcome column."""
    return calibrate_rows(read_csv(path), label, features, folds=folds, max_rules=max_rules, seed=seed,
                          source=Path(path).name)


def score_csv(csv_path: str | Path, model: ScoringModel, out_path: str | Path,
              id_column: str | None = None) -> dict[str, Any]:
    """Score every row of a CSV with `model`; writes id, score, stage. Returns counts per stage."""
    rows = read_csv(csv_path)
    if rows and id_column and id_column not in rows[0]:
        raise CalibrationError(f"no id column {id_column!r}; columns are {list(rows[0])}")
    stages: Counter[str] = Counter()
    with open(out_path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "score", "stage"])
        for i, row in enumerate(rows, 1):
            contact = _contact(i, row, id_column)
            s = score(model, contact, (), _TABLE_NOW)
            stages[s.stage.value] += 1
            out.writerow([contact.id, s.total, s.stage.value])
    return {"rows": len(rows), "stages": dict(sorted(stages.items())), "out": str(out_path)}

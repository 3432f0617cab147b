"""Calibration on small synthetic tables: quality, rule budget, level cleaning, CSV in and out, CLI."""

from __future__ import annotations

import csv
import json
import math
import random

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from scoring import loads_model
from scoring.calibrate import (
    CalibrationError,
    calibrate_csv,
    calibrate_rows,
    fit_logistic,
    roc_auc,
    score_csv,
    top_decile_precision,
)
from scoring.cli import register

FEATURES = ["visits", "minutes", "source"]


def synthetic_rows(n: int = 1200, seed: int = 3) -> list[dict[str, str]]:
    """Leads whose conversion depends on visits, time on site (non-linearly) and source.

    Dirt on purpose: 'Select' as the unanswered default, case duplicates, rare sources, blanks.
    """
    rng = random.Random(seed)
    sources = ["Google", "google", "Referral", "Direct", "Select", "Fax", ""]
    weights = [30, 5, 15, 35, 10, 1, 4]
    effect = {"google": 0.2, "referral": 1.5, "direct": -0.4}
    rows = []
    for i in range(n):
        visits = min(int(rng.expovariate(1 / 4)), 60)
        minutes = "" if rng.random() < 0.1 else f"{rng.uniform(0, 30):.1f}"
        source = rng.choices(sources, weights)[0]
        logit = -1.2 + 0.25 * min(visits, 8) + (1.4 if minutes and 8 < float(minutes) < 20 else 0.0)
        logit += effect.get(source.casefold(), 0.0) + (0.8 if not minutes else 0.0)
        converted = rng.random() < 1 / (1 + math.exp(-logit))
        rows.append({"id": f"L{i}", "visits": str(visits), "minutes": minutes, "source": source,
                     "converted": "1" if converted else "0"})
    return rows


@pytest.fixture(scope="module")
def result():
    return calibrate_rows(synthetic_rows(), "converted", FEATURES, folds=3, max_rules=12, seed=1)


def test_calibrated_model_ranks_converters(result):
    assert result.auc > 0.7
    assert result.top_decile_precision > result.base_rate
    assert 1 <= result.rules <= 12
    assert len(result.fold_auc) == 3


def test_calibrated_model_is_an_ordinary_model(result):
    assert loads_model(result.toml, "calibrated.toml") == result.model
    assert result.rules == len(result.model.properties)
    assert all(r.reason and r.points for r in result.model.properties)
    stages = result.model.stages
    assert stages.lead.total < stages.mql.total < stages.sql.total


def test_levels_are_cleaned(result):
    listed = [level for r in result.model.properties for level in (r.in_ or ()) + (r.not_in or ())]
    assert "google" not in listed  # merged into "Google"
    assert "Select" not in listed  # the form default means missing
    assert "Fax" not in listed  # too rare: pooled into "another value"


def test_rule_budget_is_respected():
    tight = calibrate_rows(synthetic_rows(600), "converted", FEATURES, folds=2, max_rules=3)
    assert tight.rules <= 3


def test_calibration_is_deterministic():
    a = calibrate_rows(synthetic_rows(400), "converted", FEATURES, folds=2, seed=5)
    b = calibrate_rows(synthetic_rows(400), "converted", FEATURES, folds=2, seed=5)
    assert a.toml == b.toml and a.auc == b.auc


def test_bad_tables_say_what_is_wrong():
    rows = synthetic_rows(100)
    with pytest.raises(CalibrationError, match="no column 'nope'"):
        calibrate_rows(rows, "converted", ["nope"])
    with pytest.raises(CalibrationError, match="both outcomes"):
        calibrate_rows([{**r, "converted": "0"} for r in rows], "converted", FEATURES)
    with pytest.raises(CalibrationError, match="expected 1/0"):
        calibrate_rows([{**r, "converted": "maybe"} for r in rows], "converted", FEATURES)


def test_metrics_on_known_values():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([1.0, 2.0, 3.0, 4.0]), labels) == 1.0
    assert roc_auc(np.array([1.0, 1.0, 1.0, 1.0]), labels) == 0.5
    scores = np.arange(20, dtype=float)
    assert top_decile_precision(scores, (scores >= 19).astype(float)) == 0.5  # top 2 of 20, one positive


def test_logistic_fit_recovers_a_clear_effect():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(2000, 1)).astype(float)
    y = (rng.random(2000) < np.where(x[:, 0] == 1, 0.8, 0.2)).astype(float)
    intercept, coefs = fit_logistic(x, y, l2=0.01)
    assert coefs[0] == pytest.approx(math.log(16), abs=0.3) and intercept == pytest.approx(math.log(0.25), abs=0.2)


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_score_csv_writes_id_score_stage(tmp_path, result):
    src, out = tmp_path / "leads.csv", tmp_path / "scores.csv"
    write_csv(src, synthetic_rows(30))
    summary = score_csv(src, result.model, out, id_column="id")
    with open(out, newline="", encoding="utf-8") as fh:
        written = list(csv.DictReader(fh))
    assert summary["rows"] == len(written) == 30
    assert list(written[0]) == ["id", "score", "stage"]
    assert written[0]["id"] == "L0" and written[0]["stage"] in {"lead", "mql", "sql"}
    assert sum(summary["stages"].values()) == 30
    score_csv(src, result.model, out)  # without an id column: row numbers
    with open(out, newline="", encoding="utf-8") as fh:
        assert [r["id"] for r in csv.DictReader(fh)][:2] == ["1", "2"]


def test_calibrate_csv_reads_by_path(tmp_path):
    src = tmp_path / "leads.csv"
    write_csv(src, synthetic_rows(300))
    assert calibrate_csv(src, "converted", FEATURES, folds=2).rows == 300


def test_cli_calibrate_then_score(tmp_path):
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps Typer from collapsing to one
    src, model, scores = tmp_path / "leads.csv", tmp_path / "model.toml", tmp_path / "scores.csv"
    write_csv(src, synthetic_rows(300))
    runner = CliRunner()
    res = runner.invoke(app, ["calibrate", "--csv", str(src), "--label", "converted", "--features",
                              ",".join(FEATURES), "--out", str(model), "--folds", "2", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["rules"] <= 40 and 0.5 < report["auc"] <= 1 and model.exists()
    res = runner.invoke(app, ["score", "--csv", str(src), "--model", str(model), "--out", str(scores),
                              "--id-column", "id", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 300
    res = runner.invoke(app, ["score", "--csv", str(src), "--model", str(src), "--out", str(scores), "--json"])
    assert res.exit_code == 1 and "not valid TOML" in json.loads(res.stdout)["error"]

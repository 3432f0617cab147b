"""`leadsync calibrate` and `leadsync score`: scoring models from and for CSV tables.

Mounted into the main CLI with `register(app)`; kept here so the commands
live next to the code they drive. Human output goes through rich; `--json`
prints exactly one object on stdout (errors too, with a non-zero exit).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from scoring.calibrate import CalibrationError, calibrate_csv, score_csv
from scoring.calibrate_history import HistoryCalibration, HistorySettings
from scoring.loader import load_model
from scoring.schema import ModelError

_out = Console()
_err = Console(stderr=True)


def _emit(obj: dict[str, Any]) -> None:
    """One JSON object with a top-level `status` (`ok`, or `error` beside an `error` message)."""
    sys.stdout.write(json.dumps({"status": "ok", **obj}, indent=2, sort_keys=True) + "\n")


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        _emit({"error": message, "status": "error"})
    else:
        _err.print(message, style="red", markup=False, highlight=False)  # messages may contain [lists]
    raise typer.Exit(1)


#: Runs the point-in-time calibration over the state store (settings, `--since`); set by the sync layer,
#: which owns the state.
FromState = Callable[[HistorySettings, str], HistoryCalibration]
_from_state: FromState | None = None


def calibrate_cmd(
    csv_path: Path | None = typer.Option(None, "--csv", exists=True, dir_okay=False,
                                         help="Historical leads with outcomes."),
    from_state: bool = typer.Option(False, "--from-state",
                                    help="Learn the current model's points from your own history, point in time."),
    label: str | None = typer.Option(None, "--label", help="Outcome column (1/0, yes/no, true/false)."),
    features: str | None = typer.Option(None, "--features", help="Comma-separated feature columns."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write the model TOML."),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds."),
    max_rules: int = typer.Option(40, "--max-rules", min=1, help="Most rules the model may have."),
    seed: int = typer.Option(0, "--seed", help="Fold assignment seed."),
    horizon: int = typer.Option(60, "--horizon", min=1, help="--from-state: days after a moment an outcome counts."),
    since: str = typer.Option("1y", "--since", help="--from-state: history to learn from (1y, 26w, a date)."),
    new_rules: int = typer.Option(8, "--new-rules", min=0, help="--from-state: most new rules to propose."),
    as_json: bool = typer.Option(False, "--json", help="Print one machine-readable JSON object."),
) -> None:
    """Fit a readable points model from historical outcomes and report its cross-validated quality."""
    columns = [c.strip() for c in (features or "").split(",") if c.strip()]
    try:
        if from_state:
            if _from_state is None:
                raise CalibrationError("--from-state needs the leadsync CLI (no state store here)")
            history = _from_state(HistorySettings(horizon_days=horizon, max_new_rules=new_rules), since)
            out.write_text(history.toml, encoding="utf-8")
            _print_history(history, out, as_json)
            return
        if csv_path and label and columns:
            result = calibrate_csv(csv_path, label, columns, folds=folds, max_rules=max_rules, seed=seed)
        else:
            raise CalibrationError("say --csv FILE --label COL --features A,B,... or --from-state")
    except (CalibrationError, ValueError, OSError) as exc:
        _fail(f"calibrate: {exc}", as_json)
        return
    out.write_text(result.toml, encoding="utf-8")
    if as_json:
        _emit({**result.to_dict(), "out": str(out)})
        return
    _out.print(f"[bold]Calibrated[/] {result.rules} rules from {result.rows:,} rows "
               f"(base rate {result.base_rate:.1%}) → {out}")
    _out.print(f"  {folds}-fold CV ROC AUC [bold]{result.auc:.3f}[/], "
               f"top-decile precision [bold]{result.top_decile_precision:.3f}[/]")
    table = Table("rule", "points", "reason")
    for rule in sorted(result.model.properties, key=lambda r: -r.points)[:12]:
        table.add_row(rule.id, f"{rule.points:+d}", rule.reason)
    _out.print(table)


def _print_history(h: HistoryCalibration, out: Path, as_json: bool) -> None:
    if as_json:
        _emit({"status": "ok", **h.to_dict(), "out": str(out)})
        return
    _out.print(f"[bold]Calibrated[/] {h.model.label} point in time → {out}")
    _out.print(f"  trained on {h.train:,} (person, moment) examples before {h.split}; "
               f"tested on {h.test:,} later ones ({h.positives_test:,} reached an opportunity)")
    _out.print(f"  held-out ROC AUC [bold]{h.auc_learned:.3f}[/] (current model {h.auc_current:.3f}), "
               f"top-decile precision [bold]{h.top_decile_learned:.3f}[/] ({h.top_decile_current:.3f})")
    table = Table("rule", "points now", "learned", title="Changed points", title_justify="left")
    for rule, (a, b) in sorted(h.changed_rules.items(), key=lambda kv: -abs(kv[1][1] - kv[1][0])):
        table.add_row(rule, f"{a:+g}", f"{b:+g}")
    _out.print(table)
    for rule in h.new_rules:
        _out.print(f"  new rule [bold]{rule}[/]")
    moves = ", ".join(f"{k} {v:,}" for k, v in h.stage_moves.items()) or "none"
    _out.print(f"  adopting it would move today: {moves}  (preview with `leadsync plan --model {out}`)")


def score_cmd(
    csv_path: Path = typer.Option(..., "--csv", exists=True, dir_okay=False, help="Rows to score."),
    model_path: Path = typer.Option(..., "--model", exists=True, dir_okay=False, help="Scoring model TOML."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write id,score,stage."),
    id_column: str | None = typer.Option(None, "--id-column", help="Column to use as id (default: row number)."),
    as_json: bool = typer.Option(False, "--json", help="Print one machine-readable JSON object."),
) -> None:
    """Score every row of a CSV with a model; writes id, score and stage per row."""
    try:
        summary = score_csv(csv_path, load_model(model_path), out, id_column)
    except (ModelError, CalibrationError, OSError) as exc:
        _fail(f"score: {exc}", as_json)
        return
    if as_json:
        _emit(summary)
        return
    stages = ", ".join(f"{stage} {count:,}" for stage, count in summary["stages"].items())
    _out.print(f"[bold]Scored[/] {summary['rows']:,} rows → {out}  ({stages})")


def register(app: typer.Typer, from_state: FromState | None = None) -> None:
    """Add `calibrate` and `score` to the given Typer app; `from_state` enables `--from-state`."""
    global _from_state
    _from_state = from_state
    app.command("calibrate")(calibrate_cmd)
    app.command("score")(score_cmd)

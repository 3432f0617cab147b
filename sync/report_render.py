"""Lay out a `build_report` dict: rich tables for the terminal, one self-contained HTML file.

Charts use plotly: a maintained, widely used library whose figures are plain
JSON rendered by plotly.js, which we inline once (so the file opens offline,
with no CDN), that renders to SVG (sharp in print) and needs no server or
headless browser to produce. Matplotlib would give static PNGs without hover;
hand-rolled SVG would be code to maintain. The price is ~4.8 MB of inline JS.

The renderers add no figures of their own: every number comes from the dict.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sync.report import FUNNEL
from sync.safe_text import crm, plain

#: Rows shown per breakdown table before "… n more": keeps the terminal readable.
MAX_ROWS = 15
_SOURCE_COLOURS = ("#2563eb", "#f97316", "#10b981", "#a855f7")
_CHART_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}


# --------------------------------------------------------------------------- formatting


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def num(value: Any) -> str:
    return "–" if value is None else str(value)


def _top(mapping: Mapping[str, Mapping[str, int]], n: int = MAX_ROWS) -> tuple[list[str], int]:
    """Keys of the n largest rows (by their sum), and how many were left out."""
    keys = sorted(mapping, key=lambda k: (-sum(mapping[k].values()), k))
    return keys[:n], max(0, len(keys) - n)


# --------------------------------------------------------------------------- terminal


def _table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption, title_justify="left", header_style="bold")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:  # cells as Text: owners, countries and rule names are data, never markup
        table.add_row(*(Text(plain(num(c) if not isinstance(c, str) else c)) for c in row))
    return table


def _funnel_table(title: str, stages: Sequence[str], rows: Mapping[str, Mapping[str, int]],
                  total: Mapping[str, int] | None = None) -> Table:
    keys, more = _top(rows)
    body = [[k, *(rows[k][s] for s in stages), sum(rows[k].values())] for k in keys]
    if total is not None:
        body.append(["total", *(total[s] for s in stages), sum(total.values())])
    return _table(title, ["", *stages, "all"], body, f"… {more} more" if more else None)


def _persons_tables(p: Mapping[str, Any] | None, stages: list[str]) -> list[Table]:
    """Each human counted once, and the identity conflicts a person must settle."""
    if not p:
        return []
    flow = p["flow"]["total"]
    tables = [_table(f"Persons: {p['persons']} humans, {p['in_several_crms']} in more than one CRM (each counted once)",
                     stages, [[p["funnel"].get(s, 0) for s in stages]],
                     f"in the window: {flow['new_mql']} persons became MQL, {flow['new_sql']} became SQL "
                     f"(MQL→SQL {pct(flow['mql_to_sql_rate'])})")]
    if p["identity_conflicts"]:
        tables.append(_table(f"Identity conflicts: {p['identity_conflicts']} (leadsync identity conflicts)",
                             ["email", "records", "why"],
                             [[c["email"] or "", ", ".join(c["records"]), c["reason"]]
                              for c in p["identity_conflict_examples"]]))
    return tables


_CHAIN = ("lead", "mql", "sql", "opportunity", "customer")


def _history_tables(hist: Mapping[str, Any] | None) -> list[Table]:
    """The whole funnel per person from the CRMs' history: weekly entries, cohort conversion, time in stage."""
    if not hist:
        return []
    cohorts = [[c["week_start"], *(f"{c[s]['entered']} → {pct(c[s]['rate'])}" for s in _CHAIN[:-1])]
               for c in hist["cohorts"]]
    total = hist["cohort_total"]
    cohorts.append(["window", *(f"{total[s]['entered']} → {pct(total[s]['rate'])}" for s in _CHAIN[:-1])])
    steps = hist["time_in_stage"]
    deals = hist["deals"]
    origins = hist["origins"]
    return [
        _table(f"Funnel history: persons entering each stage ({hist['persons']} persons with history)",
               ["week", *_CHAIN], [[w["week_start"], *(w[s] for s in _CHAIN)] for w in hist["weeks"]]
               + [["window", *(hist["total"][s] for s in _CHAIN)]],
               "first entry per person into each stage, from CRM history and leadsync's writes"),
        _table("Cohort conversion (entered → share that reached the next stage)",
               ["week", "lead→MQL", "MQL→SQL", "SQL→opportunity", "opportunity→customer"], cohorts,
               "recent cohorts are still maturing"),
        _table("Time in stage (median days to the next stage)", ["step", "persons", "median days"],
               [[k.replace("_to_", "→"), v["persons"], v["median_days"]] for k, v in steps.items()]),
        _table("Deals in the window", ["opened", "won", "lost", "open now", "win rate", "median days to win"],
               [[deals["opened"], deals["won"], deals["lost"], deals["open_now"], pct(deals["win_rate"]),
                 deals["median_days_to_win"]]]),
        _table("Where each first stage entry comes from", ["stage", *next(iter(origins.values()), {})],
               [[s, *v.values()] for s, v in origins.items()]),
    ]


def terminal_tables(report: Mapping[str, Any]) -> list[Table]:
    """Every section as a rich table, in reading order."""
    f, flow, h = report["funnel"], report["flow"], report["handoff"]
    q, fc, dq = report["qualification"], report["forecast"], report["data_quality"]
    stages = f["stages"]
    tables = [
        _funnel_table("Funnel now (contacts per stage, by source CRM)", stages, f["by_source"], f["total"]),
        *_persons_tables(report.get("persons"), stages),
        _table(
            "Weekly flow", ["week", "new MQL", "new SQL", "MQL→SQL", "days lead→MQL", "days MQL→SQL",
                            "regressions", "recycles"],
            [[w["week_start"], w["new_mql"], w["new_sql"], pct(w["mql_to_sql_rate"]), w["median_days_lead_to_mql"],
              w["median_days_mql_to_sql"], w["regressions"], w["recycles"]] for w in flow["weeks"]]
            + [_flow_total(flow["total"])],
            "MQL→SQL: share of the week's new MQLs that reached SQL since (recent weeks are still maturing)",
        ),
        *_history_tables(report.get("history")),
        _table(
            f"Hand-off: SQL follow-up tasks (SLA {h['sla_business_hours']} business hours)",
            ["task holder", "created", "completed", "in SLA", "late", "open", "overdue", "SLA met", "median h"],
            [_task_row(o, v) for o, v in h["by_owner"].items()] + [_task_row("total", h["total"])],
            _handoff_caption(h["total"], h.get("sqls_without_open_task")),
        ),
        _table(
            f"Why leads qualify: rules behind the {q['top_rules']['new_sqls']} new SQLs",
            ["rule", "kind", "points", "contacts", "share"],
            [[r["rule"], r["kind"], r["points"], r["contacts"], pct(r["share_of_points"])]
             for r in q["top_rules"]["rules"]],
        ),
        _table(
            "Score distribution per stage", ["stage", "count", "min", "p25", "median", "p75", "max", "mean"],
            [[s, d["count"], d["min"], d["p25"], d["median"], d["p75"], d["max"], d["mean"]]
             for s, d in q["score_distribution"]["by_stage"].items()],
        ),
        _table(
            "Forecast: expected customers",
            ["from", "now", "won", "lost", "open", "history rate", "funnel rate", "used", "expected"],
            [[s, v["now"], v["history"]["won"], v["history"]["lost"], v["history"]["open"],
              pct(v["history"]["rate"]), pct(v["funnel"]["rate"]), v["method"] or "–", v["expected"]]
             for s, v in fc["by_stage"].items()]
            + [["total", "", "", "", "", "", "", "", _expected(fc)]],
            "won/lost/open: contacts that reached the stage in the stage history; rate → customer",
        ),
        _table("Data quality", ["check", *dq["by_source"], "all"], _quality_rows(dq)),
        _funnel_table("Funnel by owner", stages, f["by_owner"]),
        _funnel_table("Funnel by country", stages, f["by_country"]),
    ]
    return tables


def _flow_total(t: Mapping[str, Any]) -> list[Any]:
    return ["window", t["new_mql"], t["new_sql"], pct(t["mql_to_sql_rate"]), t["median_days_lead_to_mql"],
            t["median_days_mql_to_sql"], t["regressions"], t["recycles"]]


def _task_row(owner: str, v: Mapping[str, Any]) -> list[Any]:
    return [owner, v["created"], v["completed"], v["completed_within_sla"], v["completed_late"], v["open"],
            v["overdue"], pct(v["sla_met_rate"]), v["median_business_hours_to_complete"]]


def _handoff_caption(total: Mapping[str, Any], uncovered: Mapping[str, Any] | None = None) -> str | None:
    """Credited to whoever holds each task in the CRM; plus what the table cannot show."""
    parts = []
    if uncovered and uncovered["count"]:
        parts.append(f"{uncovered['count']} SQL record(s) have no open follow-up task "
                     f"({uncovered['task_closed']} whose task was closed, {uncovered['never_had_task']} never had one)")
    if total["not_confirmed"]:
        parts.append(f"{total['not_confirmed']} task(s) planned but not confirmed by the CRM")
    if total["undone"]:
        parts.append(f"{total['undone']} task(s) closed by undo")
    return "; ".join(parts) or None


def _expected(fc: Mapping[str, Any]) -> str:
    if not fc["complete"]:
        return "– (no rate)"
    return f"{fc['expected_customers']}" + (" (indicative)" if fc["thin_history"] else "")


def _quality_rows(dq: Mapping[str, Any]) -> list[list[Any]]:
    src = dq["by_source"]

    def row(label: str, key: str, total: Any) -> list[Any]:
        return [label, *(v[key] for v in src.values()), total]

    return [
        row("contacts without email", "missing_email", dq["missing_email"]),
        row("invalid email", "invalid_email", dq["invalid_email"]),
        row("duplicate emails within the CRM", "duplicate_emails", dq["duplicates_within_crm"]),
        ["same email in both CRMs", *("" for _ in src), dq["duplicates_cross_crm"]],
        ["failed writes held/retrying", *(dq["failures"]["by_source"].get(s, 0) for s in src),
         dq["failures"]["total"]],
        ["mapping issues in window", *(dq["mapping_issues"]["by_source"].get(s, 0) for s in src),
         dq["mapping_issues"]["total"]],
    ]


def render_terminal(report: Mapping[str, Any], console: Console) -> None:
    """Print the report as rich tables (the default `leadsync report` output)."""
    w, totals = report["window"], report["totals"]
    console.rule("[bold]leadsync funnel report")
    console.print(f"window {w['since'][:16]} → {w['until'][:16]} UTC ({w['weeks']} weeks); "
                  f"{totals['contacts']} contacts, {totals['active']} active, {totals['inactive']} inactive")
    for table in terminal_tables(report):
        console.print(table)
    for note in report["notes"]:
        console.print(f"[yellow]note:[/] {crm(note)}")


# --------------------------------------------------------------------------- charts


def _layout(fig: go.Figure, title: str, height: int = 340, **kw: Any) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01, "y": 0.97, "yanchor": "top", "font": {"size": 15}},
                      height=height, margin={"l": 50, "r": 20, "t": 76, "b": 40}, template="plotly_white",
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom",
                              "traceorder": "normal"},
                      font={"size": 12}, **kw)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def chart_label(value: Any) -> str:
    """CRM text as a plotly label: plotly.js reads `<a href>`, `<b>` … in labels as markup, entities as text."""
    return html.escape(plain(value), quote=False)


def _week_labels(weeks: Sequence[Mapping[str, Any]]) -> list[str]:
    """'16 Nov' rather than '2026-11-16': twelve of them fit a half-width chart without rotating."""
    return [date.fromisoformat(w["week_start"]).strftime("%d %b") for w in weeks]


def funnel_chart(report: Mapping[str, Any]) -> go.Figure:
    """Contacts per funnel stage now, top to bottom, one stacked colour per source CRM."""
    fig = go.Figure()
    for i, (source, counts) in enumerate(report["funnel"]["by_source"].items()):
        fig.add_trace(go.Bar(name=source, y=list(FUNNEL), x=[counts[s] for s in FUNNEL], orientation="h",
                             marker_color=_SOURCE_COLOURS[i % len(_SOURCE_COLOURS)],
                             text=[counts[s] or "" for s in FUNNEL], textposition="inside"))
    return _layout(fig, "Funnel now, by source CRM", barmode="stack",
                   yaxis={"autorange": "reversed", "type": "category"}, xaxis={"title": "contacts"})


def flow_chart(report: Mapping[str, Any]) -> go.Figure:
    """New MQLs and SQLs per week, with regressions/recycles as a line."""
    weeks = report["flow"]["weeks"]
    x = _week_labels(weeks)
    fig = go.Figure([
        go.Bar(name="new MQL", x=x, y=[w["new_mql"] for w in weeks], marker_color="#60a5fa"),
        go.Bar(name="new SQL", x=x, y=[w["new_sql"] for w in weeks], marker_color="#1d4ed8"),
        go.Scatter(name="regressions + recycles", x=x, y=[w["regressions"] + w["recycles"] for w in weeks],
                   mode="lines+markers", line={"color": "#dc2626"}),
    ])
    return _layout(fig, "Weekly flow", barmode="group", xaxis={"type": "category", "title": "week starting"})


def conversion_chart(report: Mapping[str, Any]) -> go.Figure:
    """MQL→SQL cohort conversion per week, and the median days between stages."""
    weeks = report["flow"]["weeks"]
    x = _week_labels(weeks)
    rates = [None if w["mql_to_sql_rate"] is None else w["mql_to_sql_rate"] * 100 for w in weeks]
    fig = go.Figure([
        go.Scatter(name="MQL→SQL %", x=x, y=rates, mode="lines+markers+text", connectgaps=False,
                   line={"color": "#7c3aed", "width": 3}, marker={"size": 10},
                   text=[pct(w["mql_to_sql_rate"]) if w["mql_to_sql_rate"] is not None else "" for w in weeks],
                   textposition="top center"),
        go.Bar(name="median days lead→MQL", x=x, y=[w["median_days_lead_to_mql"] for w in weeks],
               marker_color="#c4b5fd", yaxis="y2", opacity=0.7),
        go.Bar(name="median days MQL→SQL", x=x, y=[w["median_days_mql_to_sql"] for w in weeks],
               marker_color="#f0abfc", yaxis="y2", opacity=0.7),
    ])
    return _layout(fig, "Conversion trend", barmode="group",
                   xaxis={"type": "category", "title": "week starting"},
                   yaxis={"title": "MQL→SQL %", "range": [0, 105]},
                   yaxis2={"title": "days", "overlaying": "y", "side": "right", "showgrid": False,
                           "rangemode": "tozero", "tickformat": ".0f"})


def score_chart(report: Mapping[str, Any]) -> go.Figure:
    """Score spread per stage as boxes drawn from the report's quartiles (min to max whiskers)."""
    by = report["qualification"]["score_distribution"]["by_stage"]
    stages = list(by)
    fig = go.Figure(go.Box(
        name="score", x=stages, q1=[by[s]["p25"] for s in stages], median=[by[s]["median"] for s in stages],
        q3=[by[s]["p75"] for s in stages], lowerfence=[by[s]["min"] for s in stages],
        upperfence=[by[s]["max"] for s in stages], mean=[by[s]["mean"] for s in stages],
        marker_color="#0d9488", showlegend=False,
    ))
    return _layout(fig, "Score distribution per stage", yaxis={"title": "total score"},
                   xaxis={"type": "category"})


def sla_chart(report: Mapping[str, Any]) -> go.Figure:
    """Per owner: tasks closed within the SLA, closed late, open in time, and overdue."""
    owners = report["handoff"]["by_owner"]
    keys = list(owners)
    x = [chart_label(o) for o in keys]
    parts = [("closed in SLA", "#16a34a", lambda v: v["completed_within_sla"]),
             ("closed late", "#f59e0b", lambda v: v["completed_late"]),
             ("open, in time", "#93c5fd", lambda v: v["open"] - v["overdue"]),
             ("overdue", "#dc2626", lambda v: v["overdue"])]
    fig = go.Figure([go.Bar(name=name, x=x, y=[get(owners[o]) for o in keys], marker_color=colour)
                     for name, colour, get in parts])
    sla = report["handoff"]["sla_business_hours"]
    return _layout(fig, f"Follow-up SLA by owner ({sla} business hours)", barmode="stack",
                   xaxis={"type": "category", "title": "owner"}, yaxis={"title": "tasks"})


CHARTS = (("funnel", funnel_chart), ("flow", flow_chart), ("conversion", conversion_chart),
          ("scores", score_chart), ("sla", sla_chart))


# --------------------------------------------------------------------------- HTML


_CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 16px 24px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; }
.meta, .note, caption { color: var(--muted); }
.grid { display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; }
@media (min-width: 1100px) { .grid { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px; break-inside: avoid; }
.chart { min-height: 340px; }
.wide { grid-column: 1 / -1; }
table { border-collapse: collapse; margin: 4px 0 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f9fafb; } tr.total td { font-weight: 600; }
caption { caption-side: bottom; text-align: left; font-size: 12px; padding-top: 4px; }
.note { background: #fffbeb; border-left: 3px solid #f59e0b; padding: 4px 8px; margin: 4px 0; }
.tables { display: flex; flex-wrap: wrap; gap: 8px 32px; align-items: flex-start; }
.tables > div { max-width: 100%; overflow-x: auto; }
h3 { font-size: 14px; margin: 8px 0 2px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 11px; }
  .grid { grid-template-columns: 1fr 1fr; }
  .card, table, h2 { break-inside: avoid; page-break-inside: avoid; }
  .modebar-container, .modebar { display: none !important; }
}
"""

# Recorded before anything else runs, so the headless test can read rendering problems from the DOM.
_WATCH_JS = """
window.__reportErrors = [];
window.addEventListener('error', function (e) { window.__reportErrors.push(String(e.message || e)); });
(function () { var orig = console.error; console.error = function () {
  window.__reportErrors.push(Array.prototype.join.call(arguments, ' ')); return orig.apply(console, arguments); }; })();
"""

_STATUS_JS = """
function resizeCharts() {
  document.querySelectorAll('.chart .plotly-graph-div').forEach(function (el) { Plotly.Plots.resize(el); });
}
window.addEventListener('beforeprint', resizeCharts);
window.addEventListener('afterprint', resizeCharts);
window.addEventListener('load', function () { resizeCharts(); setTimeout(function () {
  var charts = {};
  document.querySelectorAll('.chart .plotly-graph-div').forEach(function (el) {
    charts[el.id] = { svg: el.querySelectorAll('svg.main-svg').length,
                      marks: el.querySelectorAll('g.trace path, g.trace rect, g.point path, g.trace .point').length };
  });
  var out = document.getElementById('render-status');
  out.textContent = JSON.stringify({ plotly: typeof Plotly !== 'undefined', charts: charts,
                                     errors: window.__reportErrors });
}, 50); });
"""


def _esc(value: Any) -> str:
    return html.escape(num(value) if not isinstance(value, str) else value)


def _html_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], total_last: bool = False,
                caption: str | None = None) -> str:
    rows = list(rows)
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="total"' if total_last and i == len(rows) - 1 else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return (f'<div><h3>{_esc(title)}</h3><table>{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _tables_html(report: Mapping[str, Any]) -> str:
    """The terminal's tables, as HTML: the exact figures behind every chart."""
    parts = []
    for table in terminal_tables(report):
        headers = [str(c.header) for c in table.columns]
        rows = list(zip(*(list(c.cells) for c in table.columns), strict=True))
        has_total = bool(rows) and str(rows[-1][0]) in ("total", "window")
        parts.append(_html_table(str(table.title), headers, [[str(c) for c in r] for r in rows], has_total,
                                 str(table.caption) if table.caption else None))
    return '<div class="tables">' + "".join(parts) + "</div>"


def _chart_html(name: str, fig: go.Figure) -> str:
    """One chart card; the last (SLA by owner, often many owners) spans the whole row."""
    div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{name}",
                      config=_CHART_CONFIG, default_height=f"{fig.layout.height}px")
    wide = " wide" if name == CHARTS[-1][0] else ""
    return f'<div class="card chart{wide}" data-chart="{name}">{div}</div>'


def _json_script(report: Mapping[str, Any]) -> str:
    """The whole report as inline JSON, safe inside a <script> element."""
    data = json.dumps(report, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="report-data">{data}</script>'


def report_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page: inline plotly.js, styles, charts, tables and the report JSON."""
    w, totals = report["window"], report["totals"]
    notes = "".join(f'<p class="note">{_esc(n)}</p>' for n in report["notes"])
    charts = "".join(_chart_html(name, make(report)) for name, make in CHARTS)
    definitions = "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in report["definitions"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>leadsync funnel report — {_esc(report['generated_at'][:10])}</title>
<style>{_CSS}</style>
<script>{_WATCH_JS}</script>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>leadsync funnel report</h1>
<p class="meta">Window {_esc(w['since'][:16])} → {_esc(w['until'][:16])} UTC ({w['weeks']} weeks, Monday-based) ·
{totals['contacts']} contacts ({totals['active']} active, {totals['inactive']} inactive) ·
generated {_esc(report['generated_at'][:16])} UTC from the state store</p>
{notes}
<h2>Charts</h2><div class="grid">{charts}</div>
<h2>Figures</h2>{_tables_html(report)}
<h2>Definitions</h2><ul>{definitions}</ul>
<pre id="render-status" hidden></pre>
{_json_script(report)}
<script>{_STATUS_JS}</script>
</body></html>
"""


def render_html(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the HTML report to `path` (parent folders created); returns the path written."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(report), encoding="utf-8")
    return out

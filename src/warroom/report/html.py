"""One self-contained HTML page for a Report: the verdict first, then pictures, then numbers.

No script and nothing from the network: inline CSS and SVG drawn here, so the file can be mailed,
attached to a ticket, archived or printed as it is. Every string from the data is escaped.

    Path("incident.html").write_text(to_html(report, charts_for(report, store)))
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from warroom.model import Evidence, ModelRejection, Narrative, Report, RootCause, iso
from warroom.report.charts import Chart
from warroom.report.render import confidence_label, narrative_source_words
from warroom.report.svg import fmt_number, hhmm, line_chart, path_chain

if TYPE_CHECKING:
    from warroom.topology.iac.drift import Drift

CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--card:#f5f7fa;--line:#d5dae3;--accent:#1f5fbf;
--bad:#b3261e;--warn:#8a5a00;--warnbg:#fff4d6;--ok:#1e7a3a;--win:#ffe3b3;--onset:#d9480f;
--alert:#b3261e;--base:#6b7689}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a3abba;--bg:#14171d;
--card:#1e232b;--line:#39414e;--accent:#7fb0ff;--bad:#ff8a80;--warn:#ffd27a;--warnbg:#3a3020;
--ok:#7ddc97;--win:#4a3b1c;--onset:#ff9f5a;--alert:#ff8a80;--base:#8c96a8}}
@media print{:root{--fg:#000;--muted:#444;--bg:#fff;--card:#f3f3f3;--line:#bbb;--win:#ffe3b3}
section,figure,tr{break-inside:avoid}main{max-width:none}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);line-height:1.45;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:980px;margin:0 auto;padding:24px 20px 40px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:28px 0 10px}
header .meta{color:var(--muted);margin:0;display:flex;flex-wrap:wrap;gap:4px 20px}
code{font:0.88em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.verdict{border:1px solid var(--line);border-left:8px solid var(--muted);background:var(--card);
border-radius:8px;padding:14px 18px;margin-top:18px}
.verdict h2{margin:0;font-size:0.95em;text-transform:uppercase;letter-spacing:.06em;
color:var(--muted)}
.verdict .culprit{font-size:2em;font-weight:700;margin:2px 0 8px;overflow-wrap:anywhere}
.verdict-high{border-left-color:var(--bad)}.verdict-medium{border-left-color:var(--onset)}
.verdict-low,.verdict-inconclusive{border-left-color:var(--warn)}
.verdict-none{border-left-color:var(--ok)}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:8px 20px;
margin:0}.facts dt{color:var(--muted);font-size:.85em}.facts dd{margin:0;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;background:var(--fg);
color:var(--bg);font-size:.85em;font-weight:600}
.bar{height:6px;background:var(--line);border-radius:3px;margin-top:4px;max-width:220px}
.bar span{display:block;height:100%;background:var(--accent);border-radius:3px}
.warn{background:var(--warnbg);color:var(--fg);border:1px solid var(--warn);border-radius:8px;
padding:8px 14px;margin-top:14px}.warn h2{margin:4px 0;font-size:1em;color:var(--warn)}
.warn ul{margin:4px 0;padding-left:20px}
svg{display:block;width:100%;height:auto;font-family:inherit}
svg text{fill:var(--fg);font-size:12px}svg .muted{fill:var(--muted)}
svg .halo{paint-order:stroke;stroke:var(--bg);stroke-width:3px;stroke-linejoin:round}
.node rect{fill:var(--card);stroke:var(--line);stroke-width:1.5}
.node.culprit rect{stroke:var(--bad);stroke-width:3}.node.symptom rect{stroke:var(--accent)}
.edge{stroke:var(--muted);stroke-width:2;fill:none}.arrowhead{fill:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px 10px 6px}
figcaption{font-size:.92em;margin:0 4px 6px}figcaption span{color:var(--muted)}
.frame{fill:none;stroke:var(--line)}.grid{stroke:var(--line);stroke-width:.6}
.win{fill:var(--win);opacity:.7}.series{fill:none;stroke:var(--accent);stroke-width:1.8}
.dot{fill:var(--accent)}.alert{stroke:var(--alert);stroke-width:1.6;stroke-dasharray:5 3}
.onset{stroke:var(--onset);stroke-width:1.6}.base{stroke:var(--base);stroke-dasharray:2 3}
text.alert-label{fill:var(--alert)}text.onset-label{fill:var(--onset)}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:600}td.num,th.num{text-align:right;white-space:nowrap}
tr.top td{font-weight:600}
.summary{border:1px solid var(--line);border-radius:8px;padding:10px 18px;margin-top:14px}
.summary h2{margin:4px 0 6px;font-size:1em}.summary h3{margin:10px 0 4px;font-size:.95em}
.summary p{margin:4px 0}.summary ol{margin:4px 0;padding-left:22px}
.summary .source{color:var(--muted);font-size:.88em}
footer{margin-top:28px;color:var(--muted);font-size:.88em}
"""


def _drift(drift: Drift | None) -> str:
    if drift is None:
        return ""
    from warroom.report.drift import drift_html

    return drift_html(drift)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def to_html(report: Report, charts: Sequence[Chart] = (), drift: Drift | None = None) -> str:
    """The report as one HTML page with inline CSS and SVG charts (no script, no network);
    `drift` (investigate --iac) adds the Topology drift section."""
    incident = report.incident
    body = [
        _header(report),
        _verdict(report),
        _summary(report.narrative),
        _missing(report.missing),
        _path(report.culprit),
        _charts(charts),
        _evidence(report.culprit),
        _candidates(report.candidates),
        _rejections(report.model_rejections),
        _drift(drift),
        _notes(report.notes),
        (
            f"<footer>{report.findings_count} findings from the experts; investigated in "
            f"{report.seconds:.2f} s. Times are UTC.</footer>"
        ),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="generator" content="warroom">',
            f"<title>Incident {_e(incident.id)} · warroom</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            "<main>",
            *[part for part in body if part],
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _header(report: Report) -> str:
    incident = report.incident
    symptom = ""
    if incident.symptom_service:
        metric = f" / {incident.symptom_metric}" if incident.symptom_metric else ""
        symptom = f"<span>Symptom: <code>{_e(incident.symptom_service + metric)}</code></span>"
    return (
        f'<header><h1>Incident {_e(incident.id)}</h1><p class="meta">'
        f"<span>Window: {_e(incident.window)}</span>"
        f"<span>Alert: {_e(iso(incident.alert_time))}</span>{symptom}</p></header>"
    )


def _verdict(report: Report) -> str:
    culprit = report.culprit
    if culprit is None:
        return (
            '<section class="verdict verdict-none" aria-labelledby="verdict-h">'
            '<h2 id="verdict-h">Verdict</h2><p class="culprit">No root cause found</p>'
            "<p>No component deviated from its baseline.</p></section>"
        )
    label = confidence_label(report.confidence)
    heading = "Root cause" if label != "inconclusive" else "Best guess (inconclusive)"
    onset = iso(culprit.onset) if culprit.onset is not None else "unknown"
    share = max(0.0, min(1.0, report.confidence))
    facts = [
        ("Fault type", _e(culprit.fault_type)),
        ("Indicator", f"<code>{_e(culprit.indicator)}</code>"),
        ("Onset", _e(onset)),
        (
            "Confidence",
            f'<span class="badge">{_e(label)}</span> {report.confidence:.2f}'
            f'<div class="bar" role="img" aria-label="confidence {share:.0%}">'
            f'<span style="width:{share * 100:.0f}%"></span></div>',
        ),
        ("Explains", f"{culprit.explains:.0%} of the anomalous services"),
    ]
    items = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    return (
        f'<section class="verdict verdict-{_e(label)}" aria-labelledby="verdict-h">'
        f'<h2 id="verdict-h">{_e(heading)}</h2>'
        f'<p class="culprit">{_e(culprit.service)}</p><dl class="facts">{items}</dl></section>'
    )


def _summary(narrative: Narrative | None) -> str:
    if narrative is None:
        return ""
    steps = ""
    if narrative.steps:
        items = "".join(f"<li>{_e(step)}</li>" for step in narrative.steps)
        steps = f"<h3>Next steps</h3><ol>{items}</ol>"
    return (
        f'<section class="summary summary-{_e(narrative.source)}" aria-labelledby="summary-h">'
        f'<h2 id="summary-h">Summary</h2><p>{_e(narrative.summary)}</p>{steps}'
        f'<p class="source">{_e(narrative_source_words(narrative.source))}</p></section>'
    )


def _missing(missing: Sequence[str]) -> str:
    if not missing:
        return ""
    items = "".join(f"<li>{_e(m)}</li>" for m in missing)
    return (
        '<section class="warn" role="note" aria-labelledby="missing-h">'
        f'<h2 id="missing-h">⚠ Missing evidence</h2><ul>{items}</ul></section>'
    )


def _path(culprit: RootCause | None) -> str:
    if culprit is None or not culprit.path:
        return ""
    return (
        '<section aria-labelledby="path-h"><h2 id="path-h">Propagation path</h2>'
        f"{path_chain(culprit.path)}</section>"
    )


def _charts(charts: Sequence[Chart]) -> str:
    if not charts:
        return ""
    figures = []
    for i, chart in enumerate(charts):
        caption = f" <span>— {_e(chart.caption)}</span>" if chart.caption else ""
        figures.append(
            f"<figure><figcaption><strong>{_e(chart.title)}</strong>{caption}</figcaption>"
            f"{line_chart(chart, f'chart-{i}')}</figure>"
        )
    return (
        '<section aria-labelledby="charts-h"><h2 id="charts-h">What changed</h2>'
        f'<div class="charts">{"".join(figures)}</div></section>'
    )


def _evidence(culprit: RootCause | None) -> str:
    if culprit is None or not culprit.evidence:
        return ""
    rows = "".join(_evidence_row(i, e) for i, e in enumerate(culprit.evidence, 1))
    return (
        '<section aria-labelledby="evidence-h"><h2 id="evidence-h">Evidence</h2>'
        '<div class="table-wrap"><table><thead><tr><th class="num">#</th><th>Statement</th>'
        '<th class="num">Value</th><th class="num">Baseline</th><th>Unit</th><th>Source</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _evidence_row(i: int, e: Evidence) -> str:
    baseline = fmt_number(e.baseline) if e.baseline is not None else "—"
    return (
        f'<tr><td class="num">{i}</td><td>{_e(e.statement)}</td>'
        f'<td class="num">{_e(fmt_number(e.value))}</td><td class="num">{_e(baseline)}</td>'
        f"<td><code>{_e(e.unit)}</code></td><td><code>{_e(e.source)}</code></td></tr>"
    )


def _candidates(candidates: Sequence[RootCause]) -> str:
    if not candidates:
        return ""
    rows = []
    for i, c in enumerate(candidates, 1):
        onset = hhmm(c.onset, seconds=True) if c.onset is not None else "—"
        top = ' class="top"' if i == 1 else ""
        rows.append(
            f'<tr{top}><td class="num">{i}</td>'
            f"<td>{_e(c.service)}</td><td><code>{_e(c.indicator)}</code></td>"
            f'<td>{_e(c.fault_type)}</td><td class="num">{c.score:.2f}</td>'
            f'<td class="num">{_e(onset)}</td><td class="num">{c.explains:.0%}</td>'
            f"<td>{_e(' → '.join(c.path))}</td></tr>"
        )
    return (
        '<section aria-labelledby="candidates-h"><h2 id="candidates-h">Candidates</h2>'
        '<div class="table-wrap"><table><thead><tr><th class="num">#</th><th>Service</th>'
        '<th>Indicator</th><th>Fault type</th><th class="num">Score</th>'
        '<th class="num">Onset</th><th class="num">Explains</th><th>Path</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _rejections(rejections: Sequence[ModelRejection]) -> str:
    if not rejections:
        return ""
    rows = "".join(
        f'<tr><td>{_e(r.task)}</td><td class="num">{r.attempt}</td>'
        f"<td><code>{_e(r.reason)}</code></td><td>{_e(r.detail)}</td></tr>"
        for r in rejections
    )
    return (
        '<section aria-labelledby="rejected-h"><h2 id="rejected-h">Model outputs rejected</h2>'
        '<div class="table-wrap"><table><thead><tr><th>Task</th><th class="num">Attempt</th>'
        f"<th>Reason</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table></div>"
        "</section>"
    )


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return (
        f'<section aria-labelledby="notes-h"><h2 id="notes-h">Notes</h2><ul>{items}</ul></section>'
    )

"""The "Topology drift" section: declared calls (infrastructure code) against observed ones
(the window's traces), as Markdown, HTML and JSON pieces of a report.

    lines = drift_markdown(found)     # appended by render.to_markdown(report, drift=found)
"""

from __future__ import annotations

from html import escape
from typing import Any

from warroom.topology.iac.drift import Drift, DriftEdge

TITLE = "Topology drift"


def summary_words(drift: Drift) -> str:
    """One line: how many declared calls the traces confirm, and what disagrees."""
    return (
        f"{drift.declared} declared calls, {drift.observed} observed in the window's traces, "
        f"{drift.agreed} in both; {len(drift.undeclared)} observed but not declared, "
        f"{len(drift.silent)} declared but silent, {len(drift.unobservable)} unobservable "
        "(an end sends no spans)."
    )


def _where(edge: DriftEdge) -> str:
    return ", ".join(edge.sources) or "-"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def drift_markdown(drift: Drift) -> list[str]:
    """The section as Markdown lines."""
    lines = [f"## {TITLE}", "", summary_words(drift), ""]
    if drift.undeclared:
        lines += [
            "### Observed, not declared",
            "",
            "| call | calls | seen in | caller declared at |",
        ]
        lines.append("|---|---|---|---|")
        for e in drift.undeclared:
            lines.append(
                f"| `{e.caller}` → `{e.callee}` | {e.calls} | {_md(e.example or '-')} | "
                f"{_md(_where(e))} |"
            )
        lines.append("")
    for title, edges in (
        ("Declared, no traffic in the window", drift.silent),
        ("Declared, unobservable", drift.unobservable),
    ):
        if not edges:
            continue
        lines += [f"### {title}", "", "| call | declared at | why |", "|---|---|---|"]
        for e in edges:
            lines.append(f"| `{e.caller}` → `{e.callee}` | {_md(_where(e))} | {_md(e.reason)} |")
        lines.append("")
    if drift.renamed:
        pairs = ", ".join(f"`{a}` = `{b}`" for a, b in drift.renamed)
        lines += [f"_Names matched: {pairs}._", ""]
    return lines


def drift_html(drift: Drift) -> str:
    """The section as one HTML <section> (strings escaped)."""
    parts = [f"<section><h2>{TITLE}</h2>", f"<p>{escape(summary_words(drift))}</p>"]
    if drift.undeclared:
        rows = "".join(
            f"<tr><td><code>{escape(e.caller)}</code> → <code>{escape(e.callee)}</code></td>"
            f'<td class="num">{e.calls}</td><td>{escape(e.example or "-")}</td>'
            f"<td><code>{escape(_where(e))}</code></td></tr>"
            for e in drift.undeclared
        )
        parts.append(
            '<h3>Observed, not declared</h3><div class="table-wrap"><table><tr><th>call</th>'
            '<th class="num">calls</th><th>seen in</th><th>caller declared at</th></tr>'
            f"{rows}</table></div>"
        )
    for title, edges in (
        ("Declared, no traffic in the window", drift.silent),
        ("Declared, unobservable", drift.unobservable),
    ):
        if not edges:
            continue
        rows = "".join(
            f"<tr><td><code>{escape(e.caller)}</code> → <code>{escape(e.callee)}</code></td>"
            f"<td><code>{escape(_where(e))}</code></td><td>{escape(e.reason)}</td></tr>"
            for e in edges
        )
        parts.append(
            f'<h3>{title}</h3><div class="table-wrap"><table><tr><th>call</th>'
            f"<th>declared at</th><th>why</th></tr>{rows}</table></div>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def drift_json(drift: Drift | None) -> dict[str, Any] | None:
    """The section as plain data (None when no infrastructure code was given)."""
    return drift.to_dict() if drift is not None else None

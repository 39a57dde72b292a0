"""The server's own small pages: sign in, the list of investigations, one still running.

A finished investigation's page is the report's own HTML (report/html.py); these pages share
its look: one column, readable on a phone, no script, no outside requests.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from warroom.model import iso
from warroom.server.model import InvestigationRecord, Status

REFRESH_S = 5  # a running investigation's page reloads itself this often

_STYLE = """
body{font:16px/1.45 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1b1f24}
h1{font-size:1.3rem}table{border-collapse:collapse;width:100%}td,th{padding:.4rem;
border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}a{color:#0550ae}
.s-done{color:#1a7f37}.s-failed{color:#cf222e}.s-inconclusive{color:#9a6700}
.s-queued,.s-running{color:#57606a}input{font-size:1rem;padding:.5rem;width:100%;
box-sizing:border-box}button{font-size:1rem;padding:.5rem 1rem;margin-top:.5rem}
@media (max-width:40rem){.wide{display:none}}
"""


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{meta}<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def login(next_path: str, failed: bool = False) -> str:
    """A form that trades an API token for a session cookie."""
    warning = "<p class=s-failed>That token is not valid.</p>" if failed else ""
    form = (
        f'<form method="post" action="/login"><input type="hidden" name="next" '
        f'value="{_e(next_path)}"><label>API token<br><input type="password" name="token" '
        'autocomplete="current-password" required></label><br>'
        "<button type=submit>Sign in</button></form>"
    )
    return _page("warroom: sign in", f"<h1>warroom</h1>{warning}{form}")


def listing(records: Sequence[InvestigationRecord]) -> str:
    """The newest investigations, one row each."""
    rows = "".join(_row(r) for r in records) or "<tr><td colspan=5>No investigations yet.</td></tr>"
    table = (
        "<table><tr><th>alert</th><th>service</th><th>status</th><th>culprit</th>"
        f"<th class=wide>confidence</th></tr>{rows}</table>"
    )
    return _page("warroom: investigations", f"<h1>Investigations</h1>{table}")


def _row(record: InvestigationRecord) -> str:
    confidence = f"{record.confidence:.2f}" if record.confidence is not None else ""
    resolved = " (resolved)" if record.resolved else ""
    return (
        f'<tr><td><a href="/investigations/{_e(record.id)}">{_e(iso(record.request.alert_time))}'
        f"</a></td><td>{_e(record.request.service or '?')}</td>"
        f"<td class=s-{record.status.value}>{record.status.value}{resolved}</td>"
        f"<td>{_e(record.culprit or '')}</td><td class=wide>{confidence}</td></tr>"
    )


def pending(record: InvestigationRecord) -> str:
    """An investigation without a report yet: queued, running, or failed with its reason."""
    waiting = record.status in (Status.queued, Status.running)
    request = record.request
    lines = [
        f"<h1>{_e(request.service or 'Investigation')}: {record.status.value}</h1>",
        f"<p>Alert at {_e(iso(request.alert_time))}; window {_e(iso(request.start))} .. "
        f"{_e(iso(request.end))}.</p>",
    ]
    if record.reason:
        lines.append(f"<p class=s-{record.status.value}>{_e(record.reason)}</p>")
    if waiting:
        lines.append(f"<p>This page reloads every {REFRESH_S} s until the report is ready.</p>")
    lines.append('<p><a href="/">All investigations</a></p>')
    return _page(f"warroom: {record.status.value}", "".join(lines), refresh=waiting)

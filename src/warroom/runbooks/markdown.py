"""A runbook as Markdown a person reads and edits, and back.

    ---
    { "format": "warroom-runbook/1", "id": ..., "created": ..., "signature": {...}, ... }
    ---

    # orders-db: connection pool exhausted behind frontend errors
    ...
    ## Checks
    ### orders-db db_pool_connections_in_use up
    In shop-1-0944: orders-db db_pool_connections_in_use 2.003 -> 50 (x25, ...)
    ```warroom-dsl
    max(metric("orders-db", "db_pool_connections_in_use")) > 5 * median(...[baseline])
    ```
    ## Remediation
    1. See who holds the connections ...

The front matter is JSON (no YAML parser needed; JSON is also YAML, so Markdown viewers show
it as a table) and holds what a machine matches on. The body holds what a person edits: the
title (the `#` heading), the checks (each `###` heading, its why, its ```warroom-dsl block)
and the remediation steps (the numbered list). Other sections are for reading only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from warroom.dsl.errors import DslError
from warroom.dsl.parser import parse
from warroom.errors import InputError
from warroom.runbooks.model import FORMAT, Runbook

FENCE = "```"
DSL_INFO = "warroom-dsl"
_STEP = re.compile(r"^\s*\d+[.)]\s+(.*)$")


def to_markdown(runbook: Runbook) -> str:
    """The runbook as a Markdown file (front matter, summary, checks, remediation)."""
    front = {
        "format": FORMAT,
        "id": runbook.id,
        "created": runbook.created,
        "signature": runbook.signature.model_dump(mode="json"),
        "provenance": runbook.provenance.model_dump(mode="json"),
    }
    lines = ["---", json.dumps(front, indent=2), "---", "", f"# {runbook.title}", ""]
    lines += _summary(runbook)
    lines += ["## Checks", ""]
    lines += [
        "Each check is true when this runbook applies; the first is the fault's own mark and "
        f"must hold. Run them against a case with `warroom runbook check {runbook.id} ...`.",
        "",
    ]
    for check in runbook.checks:
        lines += [f"### {check.name}", ""]
        if check.why:
            lines += [check.why, ""]
        lines += [f"{FENCE}{DSL_INFO}", check.expression, FENCE, ""]
    lines += ["## Remediation", ""]
    lines += [f"{i}. {step}" for i, step in enumerate(runbook.remediation, 1)]
    return "\n".join(lines).rstrip() + "\n"


def _summary(runbook: Runbook) -> list[str]:
    sig, origin = runbook.signature, runbook.provenance
    alert = f"`{sig.symptom_service}`" if sig.symptom_service else "an alert"
    if sig.symptom_metric:
        alert += f" on `{sig.symptom_metric}`"
    elif sig.symptom_family:
        alert += f" ({sig.symptom_family})"
    path = " → ".join(sig.path) if sig.path else sig.culprit_service
    return [
        f"- **When:** {alert}",
        f"- **Culprit:** `{sig.culprit_service}` ({sig.fault_type}), first seen in "
        f"`{sig.culprit_indicator or '?'}`",
        f"- **Path:** {path}",
        f"- **Learned from:** incident `{origin.incident_id}`, confidence "
        f"{origin.confidence:.2f} ({origin.verdict or 'n/a'})"
        + (f", {origin.source}" if origin.source else ""),
        f"- **Saved:** {runbook.created}",
        "",
    ]


def from_markdown(text: str, where: str) -> Runbook:
    """Parse a runbook file; InputError naming `where` and the problem when it is malformed."""
    front, body = _front_matter(text, where)
    title = _title(body, where)
    sections = _sections(body)
    if "checks" not in sections:
        raise InputError(f"{where}: no '## Checks' section")
    checks = _checks(sections["checks"], where)
    steps = _steps(sections.get("remediation", []))
    data = {**front, "title": title, "checks": checks, "remediation": steps}
    data.pop("format", None)
    try:
        return Runbook.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "runbook"
        raise InputError(f"{where}: {field}: {first['msg']}") from None


def _front_matter(text: str, where: str) -> tuple[dict[str, Any], list[str]]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise InputError(f"{where}: does not start with a '---' front matter line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise InputError(f"{where}: the front matter has no closing '---' line") from None
    front = _json_front(lines[1:end], where)
    if not isinstance(front, dict):
        raise InputError(f"{where}: the front matter is not a JSON object")
    if front.get("format") != FORMAT:
        raise InputError(f"{where}: format is {front.get('format')!r}, expected {FORMAT!r}")
    return front, lines[end + 1 :]


def _json_front(lines: list[str], where: str) -> Any:
    """The front matter's JSON: no NaN, no endless numbers, no nesting past the parser."""
    try:
        return json.loads("\n".join(lines), parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{where}: the front matter is not JSON (line {err.lineno + 1}: {err.msg})"
        ) from None
    except RecursionError:
        raise InputError(f"{where}: the front matter is nested too deeply to read") from None
    except _Constant as err:
        raise InputError(f"{where}: the front matter holds {err}, not a JSON number") from None
    except ValueError:  # a number past Python's int-string limit
        raise InputError(f"{where}: the front matter holds a number too long to read") from None


class _Constant(ValueError):
    """NaN or Infinity, which Python's json reads and JSON does not have."""


def _no_constant(name: str) -> Any:
    raise _Constant(name)


def _title(body: list[str], where: str) -> str:
    for line in body:
        if line.startswith("# "):
            return line[2:].strip()
    raise InputError(f"{where}: no '# title' heading")


def _sections(body: list[str]) -> dict[str, list[str]]:
    """'## Name' sections by lower-cased name (fenced blocks are never headings)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in body:
        if line.startswith(FENCE):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            current = sections.setdefault(line[3:].strip().lower(), [])
            continue
        if current is not None:
            current.append(line)
    return sections


def _checks(lines: list[str], where: str) -> list[dict[str, str]]:
    checks: list[dict[str, str]] = []
    name: str | None = None
    why: list[str] = []
    code: list[str] | None = None
    for line in lines:
        if code is not None:
            if line.strip() == FENCE:
                checks.append(_check(name, why, code, where))
                name, why, code = None, [], None
            else:
                code.append(line)
        elif line.startswith("### "):
            name, why = line[4:].strip(), []
        elif line.strip().startswith(FENCE + DSL_INFO):
            if name is None:
                raise InputError(f"{where}: a {DSL_INFO} block in Checks has no '### name'")
            code = []
        elif name is not None and line.strip():
            why.append(line.strip())
    if code is not None:
        raise InputError(f"{where}: check {name!r}: the {DSL_INFO} block is not closed")
    return checks


def _check(name: str | None, why: list[str], code: list[str], where: str) -> dict[str, str]:
    expression = "\n".join(code).strip()
    try:
        parse(expression)
    except DslError as err:
        first_line = str(err).splitlines()[0]
        raise InputError(f"{where}: check {name!r}: {first_line}") from None
    # Validated with the rest of the runbook, so an empty name fails naming the field.
    return {"name": name or "", "expression": expression, "why": " ".join(why)}


def _steps(lines: list[str]) -> list[str]:
    steps: list[str] = []
    for line in lines:
        found = _STEP.match(line)
        if found:
            steps.append(found.group(1).strip())
        elif steps and line.strip() and line.startswith((" ", "\t")):
            steps[-1] += " " + line.strip()  # a wrapped step continues indented
    return steps

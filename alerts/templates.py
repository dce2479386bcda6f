"""Annotation templates: ``{value}``, ``{threshold}``, ``{labels[feature]}`` and nothing else.

``str.format`` follows attributes and indexes (``{labels.__class__.__init__.__globals__}``) and
nests fields inside format specs, which turns a rule's text into a way of reading the process's
memory (the database URL, the dashboard's session secret). Templates here are parsed into literal
text and named slots once, refused at parse time when a field is anything but a documented name
or ``labels[<key>]``, and rendered by substituting strings: nothing is ever looked up on an
object, so a stored template that predates the check cannot reach further either.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

# What a template may name, besides labels[<key>].
FIELDS = frozenset(
    {
        "rule",
        "model",
        "version",
        "metric",
        "value",
        "threshold",
        "baseline",
        "window_start",
        "window_end",
        "window",
        "sample_size",
        "condition",
        "dashboard_url",
        "severity",
        "drifted_features",
    }
)
_LABEL = re.compile(r"^labels\[([A-Za-z_][A-Za-z0-9_.\-]{0,127})\]$")
MAX_TEMPLATE_CHARS = 4096
MAX_RENDERED_CHARS = 8192  # label values are bounded at ingestion; this bounds what one annotation can grow to


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Slot:
    name: str  # a name in FIELDS, or the key of a label
    label: bool = False


Part = str | Slot


def parse(text: str) -> list[Part]:
    """The template as literal text and slots; ``TemplateError`` saying which field and why."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"a template may hold at most {MAX_TEMPLATE_CHARS} characters")
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:  # a lone '{' or '}'
        raise TemplateError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    parts: list[Part] = []
    for literal, field, spec, conversion in pieces:
        if literal:
            parts.append(literal)
        if field is None:
            continue
        shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if conversion or spec:
            raise TemplateError(f"field {shown}: conversions and format specs are not allowed")
        if field in FIELDS:
            parts.append(Slot(field))
            continue
        label = _LABEL.match(field)
        if label:
            parts.append(Slot(label.group(1), label=True))
            continue
        raise TemplateError(
            f"field {shown}: a template may name only {', '.join(sorted(FIELDS))} or labels[<key>] "
            "(no attributes, no other indexes)"
        )
    return parts


def render(text: str, values: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """``text`` with its slots filled from ``values`` and ``labels`` (a missing label is empty).
    A template that does not parse (stored before the check) is returned as written: the alert
    still goes out, and nothing in it was looked up."""
    try:
        parts = parse(text)
    except TemplateError:
        return text[:MAX_RENDERED_CHARS]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part.label:
            out.append(str(labels.get(part.name, "")))
        else:
            out.append(str(values.get(part.name, "")))
    rendered = "".join(out)
    return rendered if len(rendered) <= MAX_RENDERED_CHARS else rendered[: MAX_RENDERED_CHARS - 1] + "…"

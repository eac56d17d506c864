"""Locale-aware formats for clinical quantities: ``{{ value|ml }}`` gives "1.25 ml" / "1,25 мл".

Volumes are the figure neurologists compare (e.g. the DWI lesion volume against treatment
thresholds), so the unit is translated and the decimal separator follows the active language
instead of being glued on in English after ``floatformat``.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.defaultfilters import floatformat
from django.utils.html import format_html
from django.utils.translation import gettext

register = template.Library()


@register.filter
def ml(value: Any, digits: int = 2) -> str:
    """A volume in millilitres with ``digits`` decimals; empty for a missing value."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    # Translators: a volume in millilitres, e.g. "12.50 ml".
    return gettext("%(volume)s ml") % {"volume": floatformat(number, digits)}


@register.simple_tag
def metric(metrics: Any, name: str, digits: int = 3) -> str:
    """A registry figure with its bootstrap 95 % interval: ``{% metric m.metrics "lesion_f1" %}``.

    Renders "–" when the figure is missing; the interval (``<name>_lo`` / ``<name>_hi``,
    written by the trainer's evaluation) follows in brackets when there is one.
    """
    values = metrics if isinstance(metrics, dict) else {}
    value = values.get(name)
    if not isinstance(value, int | float):
        return "–"
    lo, hi = values.get(f"{name}_lo"), values.get(f"{name}_hi")
    if not isinstance(lo, int | float) or not isinstance(hi, int | float):
        return floatformat(value, digits)
    return format_html(
        '{} <small class="muted metric-interval" title="{}">({}–{})</small>',
        floatformat(value, digits),
        gettext("Bootstrap interval over the validation cases (95 per cent)"),
        floatformat(lo, 2),
        floatformat(hi, 2),
    )

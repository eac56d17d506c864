"""Locale-aware formats for clinical quantities: ``{{ value|ml }}`` gives "1.25 ml" / "1,25 мл".

Volumes are the figure neurologists compare (e.g. the DWI lesion volume against treatment
thresholds), so the unit is translated and the decimal separator follows the active language
instead of being glued on in English after ``floatformat``.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.defaultfilters import floatformat
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

"""The diagnostic work-up a TOAST etiology is decided on: its fields and strict validation.

The REST contract (``GET/PUT /api/cases/{id}/workup/``) takes one JSON object; every key may
be ``null`` (not known / not done) and a missing key means ``null`` (``PUT`` replaces).
Unknown keys and wrong types are refused: ``true`` is a boolean, ``"true"`` is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def gettext_noop(message: str) -> str:
    """Marks a message for translation (the services translate it when they show it)."""
    return message


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "bool", "int", "sex", "text"
    label: str
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None


#: The work-up fields, in the order a neurologist reads them.
FIELDS: tuple[Field, ...] = (
    Field("atrial_fibrillation", "bool", gettext_noop("Atrial fibrillation")),
    Field(
        "cardiac_source",
        "bool",
        gettext_noop("Other high-risk cardiac source (LV thrombus, mechanical valve, recent MI)"),
    ),
    Field(
        "stenosis_50",
        "bool",
        # xgettext:no-python-format
        gettext_noop("Stenosis of at least 50 % (or occlusion) of the supplying artery"),
    ),
    Field("vessel_imaging", "bool", gettext_noop("Vessel imaging done")),
    Field("cardiac_workup", "bool", gettext_noop("Cardiac work-up done (ECG monitoring, echo)")),
    Field("lacunar_syndrome", "bool", gettext_noop("Lacunar syndrome")),
    Field("other_cause", "text", gettext_noop("Other determined cause"), max_length=200),
    Field("age", "int", gettext_noop("Age (years)"), minimum=0, maximum=120),
    Field("sex", "sex", gettext_noop("Sex")),
    Field("nihss", "int", gettext_noop("NIHSS"), minimum=0, maximum=42),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
SEXES = ("F", "M")


def empty_workup() -> dict[str, Any]:
    """A work-up where nothing is known."""
    return dict.fromkeys(FIELD_NAMES)


def validate_workup(data: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """``(clean work-up, errors by key)``; the work-up is only usable when errors is empty.

    Error messages are English msgids (translate them where they are shown).
    """
    if not isinstance(data, Mapping):
        return empty_workup(), {"non_field_errors": gettext_noop("Expected a JSON object.")}
    errors: dict[str, str] = {}
    for key in data:
        if key not in FIELD_NAMES:
            errors[str(key)] = gettext_noop("Unknown work-up field.")
    clean = empty_workup()
    for field in FIELDS:
        value = data.get(field.name)
        if value is None:
            continue
        if field.kind == "bool":
            if not isinstance(value, bool):
                errors[field.name] = gettext_noop("Must be true, false or null.")
                continue
        elif field.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                errors[field.name] = gettext_noop("Must be a whole number or null.")
                continue
            assert field.minimum is not None and field.maximum is not None
            if not field.minimum <= value <= field.maximum:
                errors[field.name] = gettext_noop("Out of range.")
                continue
        elif field.kind == "sex":
            if value not in SEXES:
                errors[field.name] = gettext_noop('Must be "F", "M" or null.')
                continue
        elif field.kind == "text":
            if not isinstance(value, str):
                errors[field.name] = gettext_noop("Must be text or null.")
                continue
            value = value.strip()
            if field.max_length is not None and len(value) > field.max_length:
                errors[field.name] = gettext_noop("Too long.")
                continue
            if not value:
                value = None
        clean[field.name] = value
    return clean, errors


def cardiac_evidence(workup: Mapping[str, Any]) -> bool:
    """A documented high-risk cardioembolic source."""
    return bool(workup.get("atrial_fibrillation")) or bool(workup.get("cardiac_source"))


def workup_complete(workup: Mapping[str, Any]) -> bool:
    """Vessel imaging and the cardiac work-up were both done."""
    return workup.get("vessel_imaging") is True and workup.get("cardiac_workup") is True

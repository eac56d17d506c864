"""Translation helpers: what ``makemessages`` scans, and a small reader for gettext catalogues.

The Russian catalogues in ``locale/ru/LC_MESSAGES`` are generated from the sources with
``manage.py makemessages`` (our override in ``core/management/commands`` adds the defaults
below) and compiled by ``make setup``. The same settings are used by the test that fails when a
source adds a string without a translation, so the check and the catalogue never disagree.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

# Folders that hold no sources of ours (virtualenv, npm packages, collected static files, data,
# tests and benchmarks: their strings are never shown to a user).
MAKEMESSAGES_IGNORE = [
    ".venv",
    "node_modules",
    "staticfiles",
    "test-artifacts",
    "data",
    "tests",
    "bench",
    "docker",
    "locale",
]

# The scripts alias ``window.gettext`` as ``t`` (with a fallback when the catalogue is missing);
# xgettext must treat that alias as a keyword or those strings would never reach the catalogue.
JS_EXTRA_KEYWORDS = ["t"]

# Russian has three plural forms (1 случай, 2 случая, 5 случаев; 11-14 take the third).
RU_PLURAL_FORMS = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
    "(n%100<10 || n%100>=20) ? 1 : 2);"
)


@dataclass
class PoEntry:
    """One catalogue entry; ``msgstr`` holds every form (one, or one per plural form)."""

    msgid: str
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False
    locations: list[str] = field(default_factory=list)

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def untranslated(self) -> bool:
        return not self.msgstr or any(not s for s in self.msgstr)


_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")\s*$")


def _unquote(literal: str) -> str:
    # A PO string is a C string literal; Python's literal syntax reads it the same way for the
    # escapes gettext writes (\n, \t, \", \\).
    return str(ast.literal_eval(literal))


def po_parse(text: str) -> list[PoEntry]:
    """Parses a .po file's text; the header (empty msgid) is returned as the first entry."""
    entries: list[PoEntry] = []
    current: PoEntry | None = None
    key: str | None = None
    pending_flags: set[str] = set()
    pending_locations: list[str] = []
    obsolete = False

    def finish() -> None:
        nonlocal current, key, pending_flags, pending_locations, obsolete
        if current is not None:
            entries.append(current)
        current, key = None, None
        pending_flags, pending_locations, obsolete = set(), [], False

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            obsolete = True
            line = line[2:].strip()
            if not line:
                continue
        elif line.startswith("#,"):
            if current is not None and key is not None and key.startswith("msgstr"):
                finish()
            pending_flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
            continue
        elif line.startswith("#:"):
            if current is not None and key is not None and key.startswith("msgstr"):
                finish()
            pending_locations.extend(line[2:].split())
            continue
        elif line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match:
            keyword, literal = match.groups()
            value = _unquote(literal)
            if (
                keyword in ("msgctxt", "msgid")
                and current is not None
                and (key is not None and key.startswith("msgstr"))
            ):
                finish()
            if current is None:
                current = PoEntry(msgid="", flags=pending_flags, locations=pending_locations)
                current.obsolete = obsolete
            key = keyword
            if keyword == "msgctxt":
                current.msgctxt = value
            elif keyword == "msgid":
                current.msgid = value
            elif keyword == "msgid_plural":
                current.msgid_plural = value
            else:
                current.msgstr.append(value)
            continue
        if line.startswith('"') and current is not None and key is not None:
            value = _unquote(line)
            if key == "msgctxt":
                current.msgctxt = (current.msgctxt or "") + value
            elif key == "msgid":
                current.msgid += value
            elif key == "msgid_plural":
                current.msgid_plural = (current.msgid_plural or "") + value
            else:
                current.msgstr[-1] += value
    finish()
    return entries


def po_read(path: str | Path) -> list[PoEntry]:
    """The entries of a catalogue file (UTF-8), header first."""
    return po_parse(Path(path).read_text(encoding="utf-8"))


def po_problems(entries: list[PoEntry]) -> list[str]:
    """Human-readable reasons why a catalogue is not complete (empty, fuzzy, bad plurals)."""
    problems: list[str] = []
    header = next((e for e in entries if e.msgid == "" and not e.msgctxt), None)
    nplurals = 0
    if header and header.msgstr:
        found = re.search(r"nplurals\s*=\s*(\d+)", header.msgstr[0])
        nplurals = int(found.group(1)) if found else 0
    for entry in entries:
        if entry.obsolete or (entry.msgid == "" and not entry.msgctxt):
            continue
        where = f" ({', '.join(entry.locations)})" if entry.locations else ""
        if entry.fuzzy:
            problems.append(f"fuzzy: {entry.msgid!r}{where}")
        if entry.untranslated:
            problems.append(f"untranslated: {entry.msgid!r}{where}")
        if entry.msgid_plural is not None and nplurals and len(entry.msgstr) != nplurals:
            count = len(entry.msgstr)
            problems.append(f"{count} plural forms, expected {nplurals}: {entry.msgid!r}")
    return problems

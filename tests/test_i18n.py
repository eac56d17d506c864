"""English and Russian interface: complete catalogues, no untranslated text, locale formats.

* static scans (templates, Python, JavaScript) name the exact line that bypasses translation;
* ``makemessages`` run on a copy of the sources must find no string the catalogue lacks;
* the committed catalogues have no empty or fuzzy entries and pass ``msgfmt --check``;
* the API follows ``Accept-Language``; pages follow the user's saved language and format
  numbers, volumes and dates the Russian way; the browser tests drive the language switch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import translation

from strokeaid_site.i18n import RU_PLURAL_FORMS, po_parse, po_problems, po_read
from tests.i18n import scanners

ROOT = scanners.ROOT
LOCALE = ROOT / "locale"
CATALOGUES = {
    "django": LOCALE / "ru/LC_MESSAGES/django.po",
    "djangojs": LOCALE / "ru/LC_MESSAGES/djangojs.po",
}


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogues() -> None:
    """Compiles the .po files when their .mo is missing or older (``make setup`` does it too)."""
    stale = [
        po
        for po in CATALOGUES.values()
        if not po.with_suffix(".mo").exists()
        or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if stale and shutil.which("msgfmt"):
        call_command("compilemessages", locale=["ru"], verbosity=0)
        from django.utils.translation import trans_real

        # Catalogues already loaded in this process would still hold the old .mo.
        trans_real._translations = {}
        trans_real._default = None


# --- static scans ------------------------------------------------------------------------------
def test_scanners_find_what_they_are_meant_to_find() -> None:
    template = (
        '{% load i18n %}<h1>Cases</h1><a title="Open the case">{% translate "Open" %}</a>'
        "<td>DWI, ADC</td>{% blocktranslate %}Hi {{ x }}{% endblocktranslate %}"
        '<script>var a = "Hello world";</script>{# A note #}'
    )
    assert [t for _, t in scanners.template_untranslated(template)] == [
        "Cases",
        'title="Open the case"',
    ]
    python = (
        'raise NotFoundError("Case not found")\n'
        'raise ConflictError(_("Taken"))\n'
        'x = models.CharField("code", help_text="Some help")\n'
        "class K(models.TextChoices):\n"
        '    A = "a", "Alpha"\n'
        '    B = "b", _("Beta")\n'
        '    QUEUED = "queued"\n'
    )
    found = [line for line, _ in scanners.python_untranslated(python)]
    assert found == [1, 3, 3, 5, 7]
    js = 'el.textContent = "Saved"; t = gettext("Fine thing"); q("#a .b"); x = "Could not save";'
    assert [t for _, t in scanners.js_untranslated(js)] == ["Saved", "Could not save"]


def test_templates_have_no_untranslated_text() -> None:
    findings = scanners.scan_templates()
    assert not findings, "wrap in {% translate %} / {% blocktranslate %}:\n" + "\n".join(findings)


def test_python_user_facing_strings_are_translatable() -> None:
    findings = scanners.scan_python()
    assert not findings, "wrap in gettext / gettext_lazy:\n" + "\n".join(findings)


def test_javascript_text_goes_through_gettext() -> None:
    findings = scanners.scan_js()
    assert not findings, "wrap in gettext(...) (+ interpolate):\n" + "\n".join(findings)


# --- catalogues --------------------------------------------------------------------------------
@pytest.mark.parametrize("domain", sorted(CATALOGUES))
def test_committed_catalogue_is_complete(domain: str) -> None:
    entries = po_read(CATALOGUES[domain])
    header = entries[0]
    assert header.msgid == "" and RU_PLURAL_FORMS in header.msgstr[0].replace("\n", "")
    assert "Language: ru" in header.msgstr[0]
    assert not header.fuzzy, "the header is still marked fuzzy"
    problems = po_problems(entries)
    assert not problems, "\n".join(problems)
    assert len([e for e in entries if e.msgid]) > (300 if domain == "django" else 30)


@pytest.mark.parametrize("domain", sorted(CATALOGUES))
def test_catalogue_placeholders_match(domain: str) -> None:
    """msgfmt --check: every %(name)s / %s of the English text is kept in the Russian one."""
    if not shutil.which("msgfmt"):
        pytest.skip("GNU gettext (msgfmt) is not installed")
    result = subprocess.run(
        ["msgfmt", "--check", "-o", os.devnull, str(CATALOGUES[domain])],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_po_parser_reads_plurals_flags_and_continuations() -> None:
    entries = po_parse(
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=3;\\n"\n\n'
        '#: a.py\n#, fuzzy, python-format\nmsgid "%(n)s case"\nmsgid_plural "%(n)s cases"\n'
        'msgstr[0] "%(n)s случай"\nmsgstr[1] ""\nmsgstr[2] "%(n)s "\n"случаев"\n\n'
        'msgid "a \\"b\\""\nmsgstr "в"\n'
    )
    assert entries[1].msgstr == ["%(n)s случай", "", "%(n)s случаев"]
    assert entries[1].fuzzy and entries[1].untranslated and entries[1].locations == ["a.py"]
    assert entries[2].msgid == 'a "b"' and not entries[2].untranslated
    assert len(po_problems(entries)) == 2


_MAKEMESSAGES = """
import os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "strokeaid_site.settings.test")
import django
from django.conf import settings
django.setup()
# Only the copy's catalogue may be touched: makemessages writes into LOCALE_PATHS.
settings.LOCALE_PATHS = [os.path.abspath("locale")]
from django.core.management import call_command
call_command("makemessages", locale=["ru"], domain={domain!r}, add_location="file",
             verbosity=0)
"""


def _copy_sources(target: Path) -> None:
    """Apps, templates, our scripts and the catalogues: what makemessages reads."""
    for folder in [*scanners.APPS, "templates", "static", "locale"]:
        source = ROOT / folder
        if not source.is_dir():
            continue
        shutil.copytree(
            source,
            target / folder,
            ignore=shutil.ignore_patterns(
                "vendor", "__pycache__", "*.mo", "*.pyc", "*.png", "*.css", "*.npy", "*.onnx"
            ),
        )


def test_no_source_string_is_missing_from_the_catalogues(tmp_path: Path) -> None:
    """A string added to a template, module or script without a Russian translation fails here."""
    if not (shutil.which("xgettext") and shutil.which("msgmerge")):
        pytest.skip("GNU gettext (xgettext, msgmerge) is not installed")
    _copy_sources(tmp_path)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "strokeaid_site.settings.test"}

    def run(domain: str) -> subprocess.CompletedProcess[str]:
        script = _MAKEMESSAGES.format(root=str(ROOT), domain=domain)
        return subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, sorted(CATALOGUES)))
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    problems = []
    for domain in sorted(CATALOGUES):
        fresh = po_read(tmp_path / "locale/ru/LC_MESSAGES" / f"{domain}.po")
        problems += [f"{domain}: {p}" for p in po_problems(fresh)]
    assert not problems, (
        "strings without a Russian translation (run makemessages -l ru and "
        "makemessages -d djangojs -l ru, translate, commit):\n" + "\n".join(problems)
    )

"""English and Russian interface: complete catalogues, no untranslated text, locale formats.

* static scans (templates, Python, JavaScript) name the exact line that bypasses translation;
* ``makemessages`` run on a copy of the sources must find no string the catalogue lacks;
* the committed catalogues have no empty or fuzzy entries and pass ``msgfmt --check``;
* the API follows ``Accept-Language``; pages follow the user's saved language and format
  numbers, volumes and dates the Russian way; the browser tests drive the language switch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import translation

from strokeaid_site.i18n import RU_PLURAL_FORMS, po_parse, po_problems, po_read
from tests.factories import CaseFactory
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


def test_template_strings_have_no_backslash() -> None:
    """``{% translate "a \\\\ b" %}`` is looked up as ``a \\ b`` but extracted as ``a \\\\ b``:
    such a string is never translated, whatever the catalogue says."""
    entries = po_read(CATALOGUES["django"])
    bad = [
        e.msgid
        for e in entries
        if "\\" in e.msgid and any(loc.startswith("templates/") for loc in e.locations)
    ]
    assert not bad, bad


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


# --- API: Accept-Language ----------------------------------------------------------------------
@pytest.mark.django_db
def test_api_label_titles_follow_accept_language(api_client_for, neurologist) -> None:
    client = api_client_for(neurologist)
    ru = {
        lb["name"]: lb["title"]
        for lb in client.get("/api/labels/", HTTP_ACCEPT_LANGUAGE="ru").json()
    }
    en = {
        lb["name"]: lb["title"]
        for lb in client.get("/api/labels/", HTTP_ACCEPT_LANGUAGE="en").json()
    }
    assert ru["cardioembolic"] == "Кардиоэмболический"
    assert ru["atherothrombotic"] == "Атеротромботический"
    assert ru["lacunar"] == "Лакунарный" and ru["cryptogenic"] == "Криптогенный"
    assert en["cardioembolic"] == "Cardioembolic"


@pytest.mark.django_db
def test_api_error_messages_follow_accept_language(
    api_client_for, anon_client, neurologist
) -> None:
    client = api_client_for(neurologist)
    ru = client.get("/api/cases/999999/", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5")
    en = client.get("/api/cases/999999/", HTTP_ACCEPT_LANGUAGE="en")
    assert ru.status_code == en.status_code == 404
    assert ru.json()["message"] == "Случай не найден."
    assert en.json()["message"] == "Case not found."
    # DRF's own messages (authentication) come translated too.
    refused = anon_client.get("/api/cases/", HTTP_ACCEPT_LANGUAGE="ru")
    assert set(refused.json()) == {"message", "extra"}
    assert any("а" <= ch <= "я" for ch in refused.json()["message"].lower())
    # A service's validation message (gettext in the service, raised as ApplicationError).
    bad = client.post(
        "/api/cases/",
        {"code": "Ivanov", "etiology": "cardioembolic"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert bad.status_code == 400
    assert "псевдоним" in str(bad.json()), bad.json()


@pytest.mark.django_db
def test_api_language_for_scripts_and_for_the_browser(client, api_client_for, neurologist) -> None:
    """Token clients get the language they ask for; the browser gets the user's choice."""
    from accounts.services import user_set_language

    user_set_language(user=neurologist, language="ru")
    script = api_client_for(neurologist).get("/api/cases/999999/", HTTP_ACCEPT_LANGUAGE="en")
    assert script.json()["message"] == "Case not found."
    # A fresh browser that asks for English: after login the pages and the editor's API calls
    # follow the saved language (the first page sets the language cookie the API reads).
    client.post("/accounts/login/", {"username": "neuro", "password": "pass-Word-123"})
    assert "Случаи" in client.get("/cases/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    api = client.get("/api/cases/999999/", HTTP_ACCEPT_LANGUAGE="en")
    assert api.json()["message"] == "Случай не найден."


# --- pages: saved language, switch on every page, locale formats -----------------------------
@pytest.mark.django_db
def test_saved_language_is_used_on_pages_after_login(client, neurologist) -> None:
    client.force_login(neurologist)
    assert "Cases" in client.get("/cases/").content.decode()
    response = client.post("/accounts/language/", {"language": "ru", "next": "/cases/"})
    assert response.status_code == 302 and response["Location"] == "/cases/"
    client.logout()
    client.cookies.clear()
    # A browser that asks for English still gets the user's own choice after logging in.
    client.post("/accounts/login/", {"username": "neuro", "password": "pass-Word-123"})
    html = client.get("/cases/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ru">' in html
    assert "Случаи" in html and "Выйти" in html


@pytest.mark.django_db
def test_language_switch_rejects_unknown_languages_and_foreign_redirects(
    client, neurologist
) -> None:
    client.force_login(neurologist)
    response = client.post(
        "/accounts/language/", {"language": "xx", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    neurologist.profile.refresh_from_db()
    assert neurologist.profile.language != "xx"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/cases/", "/annotation/my-work/", "/accounts/login/"])
def test_every_page_has_the_language_switch(client, neurologist, url) -> None:
    if url != "/accounts/login/":
        client.force_login(neurologist)
    html = client.get(url).content.decode()
    assert 'class="language-switch"' in html and 'name="language"' in html
    assert 'value="ru"' in html and 'value="en"' in html


@pytest.mark.django_db
def test_case_list_in_russian_shows_label_titles_and_russian_dates(client, neurologist) -> None:
    from tests.factories import label

    CaseFactory(code="RU-0001", etiology=label("lacunar"), created_by=neurologist)
    client.force_login(neurologist)
    client.post("/accounts/language/", {"language": "ru", "next": "/"})
    html = client.get("/cases/").content.decode()
    assert "Лакунарный" in html and "Lacunar" not in html
    import re

    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", html), "dates as dd.mm.yyyy hh:mm"


def test_volume_filter_uses_the_locale_decimal_separator_and_unit() -> None:
    from accounts.templatetags.strokeaid_format import ml

    with translation.override("ru"):
        assert ml(12.345) == "12,35 мл"
        assert ml("0.5", 1) == "0,5 мл"
    with translation.override("en"):
        assert ml(12.345) == "12.35 ml"
    assert ml(None) == "" and ml("n/a") == ""


def test_javascript_catalogue_is_russian(client) -> None:
    response = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="ru")
    body = response.content.decode()
    # The catalogue is JSON with \\u escapes; "All changes saved" of the editor:
    assert json.dumps("Все изменения сохранены")[1:-1] in body
    assert '"DECIMAL_SEPARATOR": ","' in body


# --- admin labels and forms (runtime: what Django will really show) ----------------------------
OUR_APPS = ["accounts", "cases", "annotation", "inference"]
# Choice labels that are names in every language (modalities, file formats).
UNTRANSLATED_NAMES = {"DWI", "ADC", "FLAIR", "CT", "DICOM", "NIfTI", "DICOM SEG"}


def test_models_fields_and_choices_have_translatable_names() -> None:
    from django.apps import apps
    from django.utils.functional import Promise

    plain = []
    for app in OUR_APPS:
        config = apps.get_app_config(app)
        if not isinstance(config.verbose_name, Promise):
            plain.append(f"app {app}: verbose_name")
        for model in config.get_models():
            for attr in ("verbose_name", "verbose_name_plural"):
                if not isinstance(getattr(model._meta, attr), Promise):
                    plain.append(f"{model.__name__}.Meta.{attr}")
            for field in model._meta.get_fields():
                if field.auto_created or not field.concrete:
                    continue
                if not isinstance(field.verbose_name, Promise):
                    plain.append(f"{model.__name__}.{field.name}: verbose_name")
                for value, text in getattr(field, "flatchoices", None) or []:
                    if not isinstance(text, Promise) and text not in UNTRANSLATED_NAMES:
                        plain.append(f"{model.__name__}.{field.name}: choice {value!r}")
    assert not plain, "use gettext_lazy:\n" + "\n".join(plain)


def test_form_fields_have_translatable_labels() -> None:
    import importlib
    import inspect

    from django import forms
    from django.utils.functional import Promise

    plain = []
    for app in OUR_APPS:
        for name in ("views", "forms", "upload_views", "review.views", "exports.views"):
            try:
                module = importlib.import_module(f"{app}.{name}")
            except ImportError:
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if not issubclass(cls, forms.BaseForm) or cls.__module__ != module.__name__:
                    continue
                for field_name, field in cls.base_fields.items():
                    if not isinstance(field.label, Promise):
                        plain.append(f"{module.__name__}.{cls.__name__}.{field_name}: label")
    assert not plain, "give form fields label=gettext_lazy(...):\n" + "\n".join(plain)


def test_the_plural_form_of_ngettext_counts_as_translated() -> None:
    js = 'm = ngettext("%s study found.", "%s studies found.", n); el.title = "Left out here";'
    assert [t for _, t in scanners.js_untranslated(js)] == ["Left out here"]

"""Inference pages: Models menu entry, model links, prediction explanations (notes, volumes,
links), case codes in the training and export forms, translated job statuses, the compare
page's usernames, label titles and "not applicable" labels."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import translation

from annotation.models import Annotation
from cases.models import Label, Series
from inference import selectors
from inference.models import ExportJob, PredictionJob, TrainingRun
from inference.review.views import _metric_rows
from inference.services.prediction import prediction_notes_display
from strokeaid_site.errors import ApplicationError
from strokeaid_site.navigation import nav_items

pytestmark = pytest.mark.django_db


def _nav_urls(user: Any) -> list[str]:
    request = RequestFactory().get("/")
    request.user = user
    return [item["url"] for item in nav_items(request)["nav_items"]]


def test_models_menu_entry_for_the_roles_that_read_models(
    data_manager: Any, neurologist: Any, reviewer: Any, clinician: Any
) -> None:
    for user in (data_manager, neurologist, reviewer):
        assert "/models/" in _nav_urls(user), user.username
    assert "/models/" not in _nav_urls(clinician)


def test_models_page_links_versions_to_their_review_and_uses_the_list_style(
    client: Any, registered_model: Any, reviewer: Any, data_manager: Any, clinician: Any
) -> None:
    model = registered_model()
    client.force_login(reviewer)
    html = client.get("/models/").content.decode()
    assert f'href="/models/{model.pk}/review/"' in html
    assert '<table class="list" id="model-table">' in html
    assert '<table class="list runs" id="run-table">' in html
    assert 'id="start-training"' not in html  # only data managers start runs

    client.force_login(data_manager)
    html = client.get("/models/").content.decode()
    assert 'name="epochs" value="10"' in html
    assert 'id="training-help"' in html and "CPU" in html

    client.force_login(clinician)  # clinicians may see the list, not the review pages
    assert f"/models/{model.pk}/review/" not in client.get("/models/").content.decode()


def test_case_codes_resolve_to_ids(make_phantom_case: Any, data_manager: Any) -> None:
    a = make_phantom_case(mask=False, kinds=("DWI",))
    b = make_phantom_case(mask=False, kinds=("DWI",))
    text = f"{a.code}, {b.code.lower()} {a.code} {b.pk}"
    assert selectors.case_ids_resolve(user=data_manager, text=text) == [a.pk, b.pk]
    assert selectors.case_ids_resolve(user=data_manager, text="  ") is None
    with pytest.raises(ApplicationError) as exc:
        selectors.case_ids_resolve(user=data_manager, text=f"{a.code} NOPE-1 999999")
    assert "NOPE-1, 999999" in exc.value.message
    assert exc.value.extra == {"unknown": ["NOPE-1", "999999"]}


def test_case_codes_of_invisible_cases_do_not_resolve(
    make_phantom_case: Any, clinician: Any, make_user: Any
) -> None:
    other = make_user("clinician", username="other-clinician")
    theirs = make_phantom_case(mask=False, kinds=("DWI",), created_by=other)
    mine = make_phantom_case(mask=False, kinds=("DWI",), created_by=clinician)
    assert selectors.case_ids_resolve(user=clinician, text=mine.code) == [mine.pk]
    with pytest.raises(ApplicationError):
        selectors.case_ids_resolve(user=clinician, text=theirs.code)


def test_training_form_rejects_unknown_case_codes(client: Any, data_manager: Any) -> None:
    client.force_login(data_manager)
    response = client.post("/models/runs/start/", {"epochs": "1", "cases": "QA-404"}, follow=True)
    assert "Unknown cases: QA-404" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_export_form_takes_case_codes(
    client: Any,
    make_phantom_case: Any,
    data_manager: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    case = make_phantom_case()
    client.force_login(data_manager)
    response = client.post("/models/exports/", {"format": "nnunet", "cases": "NOPE"}, follow=True)
    assert "Unknown cases: NOPE" in response.content.decode()
    assert not ExportJob.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/models/exports/", {"format": "nnunet", "cases": case.code})
    job = ExportJob.objects.get()
    assert job.case_ids == [case.pk] and job.status == "done", job.error


def test_export_form_filters_become_an_explicit_case_list(
    client: Any, make_phantom_case: Any, data_manager: Any
) -> None:
    from annotation.models import Annotation

    approved = make_phantom_case("lacunar", seed=71)
    draft = make_phantom_case("lacunar", seed=72, state=Annotation.State.DRAFT)
    other = make_phantom_case("cardioembolic", seed=73)
    make_phantom_case("lacunar", seed=74, mask=False)  # no mask: never exported
    client.force_login(data_manager)
    # Any saved mask (not only approved), one etiology: the matching cases by id.
    client.post(
        "/models/exports/",
        {"format": "nnunet", "confirmed": "yes", "etiology": "lacunar"},
    )
    job = ExportJob.objects.get()
    assert job.case_ids == sorted([approved.pk, draft.pk]), job.case_ids
    assert other.pk not in job.case_ids


def test_exports_page_gives_its_script_the_translated_statuses(
    client: Any, data_manager: Any
) -> None:
    ExportJob.objects.create(format="nnunet", created_by=data_manager)
    client.force_login(data_manager)
    html = client.get("/models/exports/").content.decode()
    assert 'id="job-status-labels"' in html and '"done": "Done"' in html
    assert "inference/jobs.js" in html and '<table class="list" id="export-table">' in html
    client.cookies["django_language"] = "ru"
    html = client.get("/models/exports/").content.decode()
    with translation.override("ru"):
        done = translation.gettext("Done")
    assert done != "Done" and f'"done": "{done}"'.encode("unicode_escape").decode() in html


def test_training_run_page_polls_until_final(
    client: Any, data_manager: Any, registered_model: Any
) -> None:
    from inference.models import DatasetSnapshot

    model = registered_model()
    run = TrainingRun.objects.create(
        dataset=DatasetSnapshot.objects.create(label_set=model.label_set, name="d"),
        created_by=data_manager,
    )
    client.force_login(data_manager)
    html = client.get(f"/models/runs/{run.pk}/").content.decode()
    assert "inference/jobs.js" in html and 'data-status="queued"' in html
    assert 'id="job-status-labels"' in html and 'id="run-live-note"' in html


def test_prediction_notes_are_translated_at_display() -> None:
    notes = [
        "Series missing: ADC, FLAIR; predicted from the others.",
        "No lesion found: no etiology can be inferred from the images.",
        "Resampled onto the DWI grid: FLAIR.",
        "Something the core will say one day.",
    ]
    assert prediction_notes_display(notes) == notes
    with translation.override("ru"):
        shown = prediction_notes_display(notes)
    assert all(s != n for s, n in zip(shown[:3], notes[:3], strict=True)), shown
    assert "ADC, FLAIR" in shown[0] and "DWI" in shown[2] and "FLAIR" in shown[2]
    assert shown[3] == notes[3]


@pytest.fixture
def dwi_only_prediction(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> PredictionJob:
    """A real prediction of a DWI-only case (the predictor notes the missing series)."""
    registered_model()
    case = make_phantom_case("cardioembolic", seed=5, kinds=("DWI",))
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(neurologist).post(f"/api/cases/{case.pk}/predictions/")
    job = PredictionJob.objects.select_related("case").get(pk=response.json()["id"])
    assert job.status == "done", job.error
    return job


def test_prediction_page_explains_the_result(
    client: Any, dwi_only_prediction: PredictionJob, neurologist: Any, clinician: Any
) -> None:
    job = dwi_only_prediction
    case = job.case
    assert "Series missing: ADC, FLAIR; predicted from the others." in job.notes
    # Known per-label volumes, so the page's numbers can be checked exactly.
    PredictionJob.objects.filter(pk=job.pk).update(
        volumes_ml={"cardioembolic": 1.25, "lacunar": 0.0},
        lesions={**job.lesions, "count": 2, "total_ml": 1.25},
    )
    client.force_login(neurologist)
    html = client.get(f"/models/cases/{case.pk}/predictions/").content.decode()
    assert f'href="/cases/{case.pk}/"' in html and 'id="back-to-case"' in html
    assert '<section class="card" id="predictions-panel"' in html
    assert '<table class="list" id="prediction-table">' in html
    assert "Series missing: ADC, FLAIR; predicted from the others." in html
    assert '<td class="lesion-count">2</td>' in html
    title = Label.objects.get(name="cardioembolic", label_set=job.model.label_set).title
    assert f"{title}: 1.25 ml" in html and "1.25 ml</strong>" in html
    assert "Lacunar: " not in html  # labels the model did not find are left out
    assert f'href="/annotation/cases/{case.pk}/?prediction=1"' in html  # opens on the lesion
    dwi = Series.objects.get(case=case, kind="DWI")
    assert f'href="/models/review/series/{dwi.pk}/?prediction={job.pk}"' in html

    client.cookies["django_language"] = "ru"
    html = client.get(f"/models/cases/{case.pk}/predictions/").content.decode()
    assert "Series missing" not in html and "1,25 мл" in html

    # Clinicians see the explanation but not the comparison (a review page).
    case.created_by = clinician
    case.save(update_fields=["created_by"])
    client.cookies["django_language"] = "en"
    client.force_login(clinician)
    html = client.get(f"/models/cases/{case.pk}/predictions/").content.decode()
    assert "predicted from the others" in html and "/models/review/series/" not in html


def test_compare_page_names_users_titles_labels_and_skips_absent_labels(
    client: Any, dwi_only_prediction: PredictionJob, reviewer: Any, api_client_for: Any
) -> None:
    dwi = Series.objects.get(case=dwi_only_prediction.case, kind="DWI")
    numbers = api_client_for(reviewer).get(f"/api/series/{dwi.pk}/review/").json()
    absent = [n for n, m in numbers["metrics"]["labels"].items() if not m["present"]]
    client.force_login(reviewer)
    html = client.get(f"/models/review/series/{dwi.pk}/").content.decode()
    annotation = Annotation.objects.select_related("annotator").get(series=dwi)
    assert f"{annotation.annotator.username} — " in html
    assert not re.search(r"annotator \d", html)
    for label in Label.objects.filter(label_set=dwi_only_prediction.model.label_set):
        assert f"</span>{label.title}</td>" in html
    assert html.count('data-present="0"') == len(absent)
    assert '<table class="list" id="review-metrics">' in html


def test_metric_rows_mark_absent_labels_and_leave_them_out_of_means() -> None:
    labels = list(Label.objects.filter(label_set__is_active=True).order_by("value"))

    def m(dice: float, present: bool) -> dict[str, Any]:
        lesions = {"annotation": int(present), "prediction": int(present), "f1": dice}
        return {"dice": dice, "iou": dice, "present": present, "lesions": lesions}

    metrics = {
        "labels": {
            labels[0].name: m(1.0, False),  # absent from both: the documented 1.0
            labels[1].name: m(0.6, True),
            labels[2].name: m(0.2, True),
        }
    }
    out = _metric_rows(metrics, labels)
    assert [r["present"] for r in out["rows"]] == [False, True, True]
    assert out["rows"][1]["title"] == labels[1].title
    assert out["mean"]["n"] == 2
    assert out["mean"]["dice"] == pytest.approx(0.4) and out["mean"]["f1"] == pytest.approx(0.4)
    assert _metric_rows(None, labels) == {"rows": [], "mean": None}


def test_models_page_shows_each_registry_figure_with_its_interval_and_cases(
    client: Any, registered_model: Any, reviewer: Any
) -> None:
    model = registered_model()
    model.metrics = {
        "lesion_dice": 0.81,
        "lesion_dice_lo": 0.62,
        "lesion_dice_hi": 0.9,
        "lesion_f1": 0.7,  # no interval stored (an older model): the figure alone
        "n_val": 4,
    }
    model.save(update_fields=["metrics"])
    client.force_login(reviewer)
    html = client.get("/models/").content.decode()
    row = html[html.index(f'data-model="{model.pk}"') :]
    cell = row[row.index('class="metric-lesion_dice"') :]
    assert cell.index("0.810") < cell.index("(0.62–0.90)") < cell.index("</td>")
    f1 = row[row.index('class="metric-lesion_f1"') :]
    assert "0.700</td>" in f1 and "metric-interval" not in f1[: f1.index("</td>")]
    assert "model-few-cases" in row  # four validation cases are flagged

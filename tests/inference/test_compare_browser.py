"""The compare page in Chromium: it opens on the slice with the largest lesion, jumps between
lesion slices, zooms, pans and windows the three panels together, with large images."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.models import Annotation
from annotation.selectors import mask_array
from tests.annotation.test_editor_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compare_opens_on_the_lesion_and_navigates_like_the_editor(
    page, live_server, client, reviewer, make_phantom_case, registered_model, store_prediction
):
    case = make_phantom_case("cardioembolic", shape=(8, 64, 64))
    model = registered_model()
    dwi = case.series.get(kind="DWI")
    truth = mask_array(revision=Annotation.objects.get(series=dwi).current_revision)
    predicted = np.zeros_like(truth)
    predicted[1, 5:9, 5:9] = 2  # a small false positive far from the lesion
    store_prediction(
        case=case, model=model, labels=predicted, etiology="cardioembolic", user=reviewer
    )
    area = ((truth != 0) | (predicted != 0)).reshape(truth.shape[0], -1).sum(axis=1)
    largest = int(np.argmax(area))
    lesion_zs = [int(z) for z in np.flatnonzero(area)]

    login(page, live_server, client, reviewer)
    page.goto(f"{live_server.url}/models/review/series/{dwi.pk}/")
    page.wait_for_selector("#review-viewer[data-z]")
    assert page.eval_on_selector("#review-z", "e => Number(e.value)") == largest

    # Lesion jumps go through exactly the slices with a lesion (the false positive too).
    page.locator("#review-lesion-prev").click()
    before = [z for z in lesion_zs if z < largest]
    expected = before[-1] if before else largest
    assert page.eval_on_selector("#review-z", "e => Number(e.value)") == expected
    page.keyboard.press("n")
    assert page.eval_on_selector("#review-z", "e => Number(e.value)") == min(
        z for z in lesion_zs if z > expected
    )

    # Zoom: the three panels scale together.
    page.locator("#review-zoom-in").click()
    scales = page.eval_on_selector_all(
        "img.review-img", "els => els.map(e => getComputedStyle(e).transform)"
    )
    assert len(set(scales)) == 1 and scales[0].startswith("matrix(1.25, 0, 0, 1.25")

    # Window/level by right-drag: every panel asks for the new window.
    img = page.locator("img.review-img[data-layer='annotation']")
    box = img.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x + 80, y + 20, steps=4)
    page.mouse.up(button="right")
    page.wait_for_function(
        "[...document.querySelectorAll('img.review-img')].every("
        f"i => new URL(i.src).searchParams.get('ww') !== '{dwi.window_width}')"
    )
    srcs = page.eval_on_selector_all("img.review-img", "els => els.map(e => e.src)")
    assert len({s.split("ww=")[1].split("&")[0] for s in srcs}) == 1
    # Larger images than the old 320 px.
    assert img.bounding_box()["width"] >= 300

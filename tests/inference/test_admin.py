"""Admin of the inference rows: read-only, with model activation through the registry."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin

from inference.models import ModelVersion

pytestmark = pytest.mark.django_db


def test_every_admin_changelist_renders(admin_client: Any, registered_model: Any) -> None:
    registered_model()
    for model in admin.site._registry:
        meta = model._meta
        response = admin_client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
        assert response.status_code == 200, meta.label


def test_inference_rows_cannot_be_edited_in_the_admin(
    admin_client: Any, registered_model: Any
) -> None:
    model = registered_model()
    assert admin_client.get("/admin/inference/modelversion/add/").status_code == 403
    page = admin_client.get(f"/admin/inference/modelversion/{model.pk}/change/")
    assert page.status_code == 200  # a view page, without a save button
    assert b'name="_save"' not in page.content


def test_activate_action_uses_the_registry(admin_client: Any, registered_model: Any) -> None:
    first = registered_model(name="first")
    second = registered_model(name="second", activate=False)
    assert ModelVersion.objects.get(is_active=True) == first
    response = admin_client.post(
        "/admin/inference/modelversion/",
        {"action": "activate", "_selected_action": [second.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert ModelVersion.objects.get(is_active=True) == second
    assert list(ModelVersion.objects.filter(is_active=True)) == [second]

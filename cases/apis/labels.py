"""``GET /api/labels/``: the active label set (value 0, background, is not a label)."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics

from cases.models import Label
from cases.selectors import labels_active
from cases.serializers import LabelOutputSerializer
from core.api import HasAnyRole


class LabelListApi(generics.ListAPIView[Label]):
    """``[{"value", "name", "color", "title"}]``; ``title`` follows ``Accept-Language``."""

    permission_classes = [HasAnyRole]
    serializer_class = LabelOutputSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Label]:
        return labels_active()

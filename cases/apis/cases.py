"""Case APIs: ``/api/cases/`` (list, create) and ``/api/cases/{id}/`` (read, update, delete)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from cases.models import Case, Series
from cases.selectors import (
    case_can_create,
    case_can_delete,
    case_get_for_user,
    case_list_for_user,
    labels_active,
    series_list_for_case,
)
from cases.serializers import CaseOutputSerializer, SeriesOutputSerializer
from cases.services.case import NOTE_MAX_LENGTH, case_create, case_delete, case_update
from core.api import HasAnyRole, PageNumberPagination
from strokeaid_site.errors import ForbiddenError

_FILTER_PARAMETERS = [
    OpenApiParameter("etiology", str, description="Label name, or 'none' for no etiology."),
    OpenApiParameter("confirmed", bool),
    OpenApiParameter("status", str, enum=Case.Status.values),
    OpenApiParameter("q", str, description="Code contains (case-insensitive)."),
]


class CaseListCreateApi(generics.ListAPIView[Case]):
    """``GET``: visible cases, paginated, newest first. ``POST``: a new case."""

    permission_classes = [HasAnyRole]
    serializer_class = CaseOutputSerializer
    pagination_class = PageNumberPagination

    class FilterSerializer(serializers.Serializer[Any]):
        etiology = serializers.CharField(required=False, allow_blank=True)
        confirmed = serializers.BooleanField(required=False, allow_null=True, default=None)
        status = serializers.ChoiceField(
            choices=Case.Status.choices, required=False, allow_blank=True
        )
        q = serializers.CharField(required=False, allow_blank=True)

        def validate_etiology(self, value: str) -> str:
            # An unknown label must not quietly give an empty page: a typo would read as
            # "no such cases". "none" selects the cases without an etiology.
            if value and value != "none" and not labels_active().filter(name=value).exists():
                raise serializers.ValidationError(
                    _("Unknown etiology label: use a label name or 'none'.")
                )
            return value

    class InputSerializer(serializers.Serializer[Any]):
        code = serializers.CharField(max_length=64)
        etiology = serializers.CharField(required=False, allow_null=True, default=None)
        confirmed = serializers.BooleanField(required=False, default=False)
        note = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=NOTE_MAX_LENGTH
        )

    def get_queryset(self) -> QuerySet[Case]:
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return case_list_for_user(user=self.request.user, filters=filters.validated_data)

    @extend_schema(parameters=_FILTER_PARAMETERS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=InputSerializer, responses={201: CaseOutputSerializer})
    def post(self, request: Request) -> Response:
        if not case_can_create(user=request.user):
            raise ForbiddenError(_("Your role may not create cases."))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = case_create(
            user=request_user(request),
            origin=getattr(request, "strokeaid_origin", None),
            **data.validated_data,
        )
        case = case_get_for_user(user=request.user, case_id=created.pk)
        return Response(CaseOutputSerializer(case).data, status=status.HTTP_201_CREATED)


class CaseDetailApi(APIView):
    """``GET`` a case, ``PATCH`` its fields, ``DELETE`` it (data managers only)."""

    permission_classes = [HasAnyRole]

    class UpdateInputSerializer(serializers.Serializer[Any]):
        code = serializers.CharField(max_length=64, required=False)
        etiology = serializers.CharField(required=False, allow_null=True)
        confirmed = serializers.BooleanField(required=False)
        note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH)
        # The status follows the workflow: only "archived" (or the unchanged value) is
        # accepted here; ``archived`` archives (true) or unarchives (false) the case.
        status = serializers.ChoiceField(choices=Case.Status.choices, required=False)
        archived = serializers.BooleanField(required=False)

    @extend_schema(responses=CaseOutputSerializer)
    def get(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id)
        return Response(CaseOutputSerializer(case).data)

    @extend_schema(request=UpdateInputSerializer, responses=CaseOutputSerializer)
    def patch(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id, for_write=True)
        data = self.UpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        case_update(user=request_user(request), case=case, data=dict(data.validated_data))
        case = case_get_for_user(user=request.user, case_id=case_id)
        return Response(CaseOutputSerializer(case).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id)
        if not case_can_delete(user=request.user, case=case):
            raise ForbiddenError(_("Only data managers may delete cases."), {"case": case_id})
        case_delete(user=request_user(request), case=case)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[OpenApiParameter("case_id", OpenApiTypes.INT, OpenApiParameter.PATH)])
class CaseSeriesListApi(generics.ListAPIView[Series]):
    """``GET /api/cases/{id}/series/``: the case's series (not paginated: a case has few)."""

    permission_classes = [HasAnyRole]
    serializer_class = SeriesOutputSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Series]:
        case = case_get_for_user(user=self.request.user, case_id=self.kwargs["case_id"])
        return series_list_for_case(case=case)

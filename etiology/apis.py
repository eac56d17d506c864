"""``/api/cases/{id}/workup/``, ``/api/cases/{id}/checks/`` and ``/api/checks/``."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from cases.selectors import case_get_for_user, case_visible_queryset
from core.api import HasAnyRole
from etiology.reasoning.workup import SEXES
from etiology.selectors import cases_with_checks, checks_can_list, checks_for_case, workup_for_case
from etiology.services import workup_replace
from strokeaid_site.errors import ForbiddenError

_CASE_ID = OpenApiParameter("case_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class WorkupSerializer(serializers.Serializer[Any]):
    """The work-up (schema only: the service validates strictly)."""

    atrial_fibrillation = serializers.BooleanField(allow_null=True, required=False)
    cardiac_source = serializers.BooleanField(allow_null=True, required=False)
    stenosis_50 = serializers.BooleanField(allow_null=True, required=False)
    vessel_imaging = serializers.BooleanField(allow_null=True, required=False)
    cardiac_workup = serializers.BooleanField(allow_null=True, required=False)
    lacunar_syndrome = serializers.BooleanField(allow_null=True, required=False)
    other_cause = serializers.CharField(allow_null=True, required=False, max_length=200)
    age = serializers.IntegerField(allow_null=True, required=False, min_value=0, max_value=120)
    sex = serializers.ChoiceField(choices=SEXES, allow_null=True, required=False)
    nihss = serializers.IntegerField(allow_null=True, required=False, min_value=0, max_value=42)


class CheckSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["warning", "error"])
    message = serializers.CharField()


@extend_schema(parameters=[_CASE_ID])
class WorkupApi(APIView):
    """``GET`` the case's diagnostic work-up; ``PUT`` replaces it (missing keys: unknown)."""

    permission_classes = [HasAnyRole]
    error_statuses = (400, 403, 404)

    @extend_schema(responses=WorkupSerializer)
    def get(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id)
        return Response(workup_for_case(case=case))

    @extend_schema(request=WorkupSerializer, responses=WorkupSerializer)
    def put(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id, for_write=True)
        return Response(workup_replace(user=request_user(request), case=case, data=request.data))


@extend_schema(parameters=[_CASE_ID])
class CaseChecksApi(APIView):
    """``GET``: where the case's etiology, mask pattern and work-up contradict each other."""

    permission_classes = [HasAnyRole]
    error_statuses = (403, 404)

    @extend_schema(responses=CheckSerializer(many=True))
    def get(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id)
        return Response(checks_for_case(case=case))


class OpenChecksApi(APIView):
    """``GET``: every visible case with open checks (data managers, neurologists, reviewers)."""

    permission_classes = [HasAnyRole]
    error_statuses = (403,)

    @extend_schema(
        responses=inline_serializer(
            "CaseChecks",
            {
                "case": serializers.IntegerField(),
                "code": serializers.CharField(),
                "checks": CheckSerializer(many=True),
            },
            many=True,
        )
    )
    def get(self, request: Request) -> Response:
        if not checks_can_list(user=request.user):
            raise ForbiddenError(
                _("Only data managers, neurologists and reviewers see all checks.")
            )
        rows = cases_with_checks(cases=case_visible_queryset(user=request.user))
        return Response([{"case": c.pk, "code": c.code, "checks": checks} for c, checks in rows])

"""REST APIs of issue 5: exports, annotator agreement and consensus, case-review actions.

One ``APIView`` per write operation with nested input/output serializers and one service call.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from accounts.permissions import role_required
from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER
from cases.selectors import series_get_for_user
from inference.review import agreement as agreement_services
from inference.review import selectors as review_selectors
from inference.review import services as review_services

IsDataManager = role_required(DATA_MANAGER)
IsReviewer = role_required(REVIEWER)
IsNeurologist = role_required(NEUROLOGIST)
ReviewRoles = role_required(NEUROLOGIST, REVIEWER, DATA_MANAGER)


# --- agreement and consensus ----------------------------------------------------------------
class SeriesAgreementApi(APIView):
    """``GET /api/series/{id}/agreement/``: pairwise Dice per label and etiology kappas."""

    permission_classes = [ReviewRoles]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        return Response(agreement_services.series_agreement(series=series))


class SeriesConsensusApi(APIView):
    """``POST /api/series/{id}/consensus/`` ``{"method": "pick"|"majority", "annotation"}``."""

    permission_classes = [IsReviewer]

    class InputSerializer(serializers.Serializer[Any]):
        method = serializers.ChoiceField(choices=agreement_services.CONSENSUS_METHODS)
        annotation = serializers.IntegerField(required=False, allow_null=True)
        annotations = serializers.ListField(
            child=serializers.IntegerField(), required=False, allow_null=True
        )

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        state = serializers.CharField()
        revision = serializers.IntegerField(source="revision_count")
        is_consensus = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        annotation = agreement_services.consensus_create(
            user=request_user(request),
            series=series,
            method=values["method"],
            annotation_id=values.get("annotation"),
            annotation_ids=values.get("annotations"),
        )
        return Response(self.OutputSerializer(annotation).data, status=status.HTTP_201_CREATED)


# --- case review actions --------------------------------------------------------------------
class SeriesReviewApi(APIView):
    """``GET /api/series/{id}/review/``: the per-case numbers (annotation vs prediction)."""

    permission_classes = [ReviewRoles]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        pair = review_selectors.review_pair_get(
            series=series,
            annotation_id=_int(request.query_params.get("annotation")),
            prediction_id=_int(request.query_params.get("prediction")),
        )
        return Response(review_selectors.case_review_numbers(pair=pair))


class PredictionAcceptApi(APIView):
    """``POST /api/series/{id}/review/accept/`` ``{"prediction": id}``: the prediction becomes
    the caller's draft annotation (a new revision of their mask)."""

    permission_classes = [IsNeurologist]

    class InputSerializer(serializers.Serializer[Any]):
        prediction = serializers.IntegerField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = review_services.prediction_accept_as_draft(
            user=request_user(request),
            series=series,
            prediction_id=data.validated_data.get("prediction"),
        )
        return Response(
            {
                "annotation": annotation.pk,
                "state": annotation.state,
                "revision": annotation.revision_count,
            },
            status=status.HTTP_201_CREATED,
        )


class PredictionFlagApi(APIView):
    """``POST /api/series/{id}/review/flag/`` ``{"prediction": id, "comment"}``."""

    permission_classes = [ReviewRoles]

    class InputSerializer(serializers.Serializer[Any]):
        prediction = serializers.IntegerField(required=False, allow_null=True)
        comment = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = review_services.prediction_flag(
            user=request_user(request),
            series=series,
            prediction_id=data.validated_data.get("prediction"),
            comment=data.validated_data["comment"],
        )
        return Response({"flag": event.pk}, status=status.HTTP_201_CREATED)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None

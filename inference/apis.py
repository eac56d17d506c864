"""REST APIs of the inference app: training runs, models, predictions (one view per write)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseBase
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from accounts.permissions import role_required
from accounts.roles import DATA_MANAGER
from cases.selectors import case_get_for_user, series_get_for_user
from core.api import FallbackContentNegotiation, HasAnyRole, PageNumberPagination
from inference import selectors, services
from inference.models import JobStatus, ModelVersion, PredictionJob, TrainingRun
from inference.rendering import label_volume_nifti_gz
from inference.serializers import (
    ModelActivateInputSerializer,
    ModelOutputSerializer,
    PredictionOutputSerializer,
    TrainingRunListSerializer,
    TrainingRunOutputSerializer,
    TrainingRunStartInputSerializer,
)
from inference.services.explorer import explorer_can_use, explorer_rows, explorer_run
from inference.services.report import prediction_report_png
from strokeaid_site.errors import ConflictError, ForbiddenError, NotFoundError

if TYPE_CHECKING:
    # Stub-only protocol: what APIView.get_permissions returns in drf-stubs.
    from rest_framework.permissions import _SupportsHasPermission

IsDataManager = role_required(DATA_MANAGER)


class TrainingRunListApi(APIView):
    """``GET /api/training-runs/`` (list) and ``POST`` (start a run, data managers only)."""

    permission_classes = [HasAnyRole]
    # Declared for the schema (the list is documented as paginated); get() paginates itself.
    pagination_class = PageNumberPagination

    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        if self.request.method == "POST":
            return [IsDataManager()]
        return super().get_permissions()

    @extend_schema(responses=TrainingRunListSerializer(many=True))
    def get(self, request: Request) -> Response:
        qs = selectors.training_run_list_for_user(user=request.user)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TrainingRunListSerializer(page, many=True).data)

    @extend_schema(
        request=TrainingRunStartInputSerializer, responses={202: TrainingRunOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = TrainingRunStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run, _created = services.training_run_start(
            user=request_user(request),
            epochs=values["epochs"],
            case_ids=values.get("cases"),
            params=values["params"],
            filters=values.get("filters"),
            activate=values.get("activate", False),
        )
        run = selectors.training_run_get_for_user(user=request.user, run_id=run.pk)
        return Response(TrainingRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(generics.RetrieveAPIView[TrainingRun]):
    """``GET /api/training-runs/{id}/``."""

    permission_classes = [HasAnyRole]
    serializer_class = TrainingRunOutputSerializer

    def get_object(self) -> TrainingRun:
        return selectors.training_run_get_for_user(
            user=self.request.user, run_id=self.kwargs["run_id"]
        )


class ModelListApi(generics.ListAPIView[ModelVersion]):
    """``GET /api/models/``: every model version, the active one first."""

    permission_classes = [HasAnyRole]
    serializer_class = ModelOutputSerializer

    def get_queryset(self) -> QuerySet[ModelVersion]:
        return selectors.model_list_for_user(user=self.request.user)


class ModelDetailApi(generics.RetrieveAPIView[ModelVersion]):
    permission_classes = [HasAnyRole]
    serializer_class = ModelOutputSerializer

    def get_object(self) -> ModelVersion:
        return selectors.model_get_for_user(
            user=self.request.user, model_id=self.kwargs["model_id"]
        )


class ModelActivateApi(APIView):
    """``POST /api/models/{id}/activate/`` (data managers).

    When another model is active the two are compared on their shared held-out cases first;
    a candidate worse there answers ``409`` with the comparison in ``extra`` unless the body
    gives ``{"override_reason": "..."}`` (audited).
    """

    permission_classes = [IsDataManager]

    @extend_schema(request=ModelActivateInputSerializer, responses=ModelOutputSerializer)
    def post(self, request: Request, model_id: int) -> Response:
        data = ModelActivateInputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        model = selectors.model_get_for_user(user=request.user, model_id=model_id)
        model = services.model_activate(
            user=request_user(request),
            model=model,
            override_reason=data.validated_data["override_reason"],
        )
        model = selectors.model_get_for_user(user=request.user, model_id=model.pk)
        return Response(ModelOutputSerializer(model).data)


class CasePredictionListApi(APIView):
    """``POST /api/cases/{id}/predictions/`` (queue) and ``GET`` (the case's predictions)."""

    permission_classes = [HasAnyRole]

    @extend_schema(responses=PredictionOutputSerializer(many=True))
    def get(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id)
        jobs = selectors.prediction_list_for_case(user=request.user, case_id=case.pk)
        return Response(PredictionOutputSerializer(jobs, many=True).data)

    @extend_schema(request=None, responses={202: PredictionOutputSerializer})
    def post(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id)
        job, _created = services.prediction_request(user=request_user(request), case=case)
        job = selectors.prediction_get_for_user(user=request.user, prediction_id=job.pk)
        return Response(PredictionOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class PredictionDetailApi(generics.RetrieveAPIView[PredictionJob]):
    """``GET /api/predictions/{id}/``."""

    permission_classes = [HasAnyRole]
    serializer_class = PredictionOutputSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        # The case's live consistency checks: on the detail only (lists stay cheap).
        return {**super().get_serializer_context(), "with_checks": True}

    def get_object(self) -> PredictionJob:
        return selectors.prediction_get_for_user(
            user=self.request.user, prediction_id=self.kwargs["prediction_id"]
        )


class _FileApi(APIView):
    permission_classes = [HasAnyRole]
    content_negotiation_class = FallbackContentNegotiation


class PredictionReportPngApi(_FileApi):
    """``GET /api/predictions/{id}/report.png``: the report picture (answers, explanation,
    pattern, work-up and gaps, key slices with the predicted lesion outlined)."""

    error_statuses = (403, 404, 409)

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request: Request, prediction_id: int) -> HttpResponseBase:
        job = selectors.prediction_get_for_user(user=request.user, prediction_id=prediction_id)
        body = prediction_report_png(job)
        response = HttpResponse(body, content_type="image/png")
        response["Content-Disposition"] = f'inline; filename="{job.case.code}_report_{job.pk}.png"'
        response["Cache-Control"] = "private, max-age=60"
        return response


class PredictionMaskNiftiApi(_FileApi):
    """``GET /api/predictions/{id}/mask.nii.gz``: the label volume on the reference grid."""

    @extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
    def get(self, request: Request, prediction_id: int) -> HttpResponseBase:
        job = selectors.prediction_get_for_user(user=request.user, prediction_id=prediction_id)
        if job.status != JobStatus.DONE or job.reference_series is None:
            raise ConflictError(
                _("The prediction is not done (status: %(status)s).") % {"status": job.status},
                {"status": job.status},
            )
        volume = services.prediction_label_volume(job=job)
        body = label_volume_nifti_gz(volume, affine=job.reference_series.affine)
        response = HttpResponse(body, content_type="application/gzip")
        name = f"{job.case.code}_prediction_{job.pk}.nii.gz"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class SeriesPredictionRawApi(_FileApi):
    """``GET /api/series/{id}/prediction.raw``: the newest done prediction of the series.

    Body: uint8 label values, C order (z, y, x), no header, like the editor's mask format;
    headers ``X-Shape: z,y,x``, ``X-Dtype: uint8``, ``X-Prediction: <id>``, ``X-Model: <id>``.
    404 when the series has no finished prediction.
    """

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, series_id: int) -> HttpResponseBase:
        series = series_get_for_user(user=request.user, series_id=series_id)
        output = selectors.prediction_latest_for_series(series=series)
        if output is None:
            raise NotFoundError(_("This series has no prediction yet."), {"series": series_id})
        from cases import storage

        data = storage.read_array(output.labels_key)
        body = data.astype("uint8", copy=False).tobytes(order="C")
        response = HttpResponse(body, content_type="application/octet-stream")
        response["X-Shape"] = ",".join(str(int(n)) for n in data.shape)
        response["X-Dtype"] = "uint8"
        response["X-Prediction"] = str(output.job_id)
        response["X-Model"] = str(output.job.model_id)
        response["Content-Length"] = str(len(body))
        response["Cache-Control"] = "private, no-cache"
        return response


class CryptogenicExplorerApi(APIView):
    """``GET /api/explorer/cryptogenic/``: for every case labelled cryptogenic, the mechanism
    the active model suggests (``?order=confidence|code``) and their distribution; ``POST``
    queues predictions for the cases without one (neurologists, data managers, reviewers)."""

    permission_classes = [HasAnyRole]
    error_statuses = (403,)

    def _check(self, request: Request) -> None:
        if not explorer_can_use(user=request.user):
            raise ForbiddenError(
                _("Only neurologists, data managers and reviewers use the explorer.")
            )

    @extend_schema(
        parameters=[OpenApiParameter("order", str, enum=["confidence", "code"])],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        self._check(request)
        order = request.query_params.get("order") or "confidence"
        return Response(explorer_rows(user=request.user, order=order))

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        self._check(request)
        queued = explorer_run(user=request_user(request))
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)

"""The partner reports API: a range's figures (JSON or CSV), the liability as of a moment, and
the streamed exports of the rows behind them. Always the key's mode."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config import openapi_examples as examples
from config.csv_output import CSV_MEDIA_TYPE, CsvOrJsonMixin, CSVRenderer, csv_response
from config.csv_output import streaming_csv_response as streaming
from config.errors import ErrorCode
from config.openapi import AUTH_ERRORS, error, json_only, ok_envelope
from partnerships.models import Partnership

from ..apis import READ_REFUSED, key_mode
from .exports import ExportKind, RowFilter, csv_export_start
from .filters import report_scope_for
from .selectors import ReportScope, liability_at, report_campaigns, report_days, report_totals
from .serializers import (
    LiabilityFilterSerializer,
    LiabilitySerializer,
    ReportRangeSerializer,
    RewardReportFilterSerializer,
    RewardReportSerializer,
    liability_json,
    report_csv,
    report_json,
)

NOT_FOUND = error(
    "Unknown partnership, or no campaign / trigger by that name in it",
    ErrorCode.PARTNERSHIP_DOES_NOT_EXIST,
    ErrorCode.CAMPAIGN_DOES_NOT_EXIST,
    ErrorCode.TRIGGER_DOES_NOT_EXIST,
)
RANGE_REFUSED = error(
    "Invalid filter or date, `to` before `from`, a range too long, or `mode` not the key's",
    ErrorCode.VALIDATION_ERROR,
    ErrorCode.INVALID_RANGE,
    ErrorCode.RANGE_TOO_LONG,
    ErrorCode.MODE_MISMATCH,
)


def _partnership(request) -> Partnership:
    return Partnership.objects.get(pk=request.user.partnership.id)


def _scope(request, filters: type[ReportRangeSerializer]) -> tuple[ReportScope, dict]:
    # A plain dict: as a QueryDict, DRF would take "?campaign=" for no filter at all.
    given = filters(data=request.query_params.dict())
    given.is_valid(raise_exception=True)
    params = given.validated_data
    scope = report_scope_for(
        partnership=_partnership(request),
        mode=key_mode(request.user, params.get("mode")),
        first_day=params["from"],
        last_day=params["to"],
        campaign=params.get("campaign"),
        trigger=params.get("trigger"),
    )
    return scope, params


class RewardReportApi(CsvOrJsonMixin, APIView):
    @extend_schema(
        operation_id="report_rewards",
        summary="Rewards issued and reversed, events and decisions of a range, by day or campaign",
        description="Local days in the partnership's time zone; amounts per unit as exact "
        "decimal strings. A reversal counts on the day it happened. With `format=csv` (or "
        "`Accept: text/csv`): the `days` or `campaigns` rows as CSV (docs/api.md lists the "
        "columns), with headers `X-Report-Mode`, `X-Report-Time-Zone`, "
        "`X-Report-Received-Through`. Errors are JSON either way.",
        parameters=[RewardReportFilterSerializer],
        examples=examples.REPORT_REWARDS,
        responses={
            (200, "application/json"): ok_envelope("RewardReport", RewardReportSerializer),
            (200, CSV_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR),
            **json_only({**AUTH_ERRORS, 404: NOT_FOUND, 422: RANGE_REFUSED}),
        },
    )
    def get(self, request, partnership_id: str) -> Response:
        scope, params = _scope(request, RewardReportFilterSerializer)
        group_by = params["group_by"]
        totals = report_totals(scope=scope, unique_users=params["unique_users"])
        rows = report_days(scope=scope) if group_by == "day" else report_campaigns(scope=scope)
        if self.wants_csv(request):
            return csv_response(
                report_csv(scope=scope, totals=totals, group_by=group_by, rows=rows)
            )
        data = report_json(scope=scope, totals=totals, group_by=group_by, rows=rows, filters=params)
        return Response({"code": "ok", "data": RewardReportSerializer(data).data})


class LiabilityApi(APIView):
    @extend_schema(
        operation_id="report_liability",
        summary="Outstanding liability per unit as of a moment: issued minus reversed",
        description="Exact at any timestamp, past or present (a future `at` shows what is "
        "recorded so far).",
        parameters=[LiabilityFilterSerializer],
        examples=examples.REPORT_LIABILITY,
        responses={
            200: ok_envelope("Liability", LiabilitySerializer),
            **AUTH_ERRORS,
            422: READ_REFUSED,
        },
    )
    def get(self, request, partnership_id: str) -> Response:
        given = LiabilityFilterSerializer(data=request.query_params.dict())
        given.is_valid(raise_exception=True)
        mode = key_mode(request.user, given.validated_data.get("mode"))
        at = given.validated_data.get("at") or timezone.now()
        partnership = _partnership(request)
        outstanding = liability_at(partnership=partnership, mode=mode, at=at)
        data = liability_json(partnership=partnership, mode=mode, at=at, outstanding=outstanding)
        return Response({"code": "ok", "data": LiabilitySerializer(data).data})


def _export_schema(operation_id: str, summary: str, description: str, examples: list):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=f"{description} Columns: docs/api.md.",
        parameters=[ReportRangeSerializer],
        examples=examples,
        responses={
            (200, CSV_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.STR,
                description="CSV, streamed; header `X-Export-As-Of`: the moment it reflects",
            ),
            **json_only({**AUTH_ERRORS, 404: NOT_FOUND, 422: RANGE_REFUSED}),
        },
    )


class RewardExportApi(CsvOrJsonMixin, APIView):
    """Streams the rows; only errors go through a renderer (JSON)."""

    renderer_classes = (CSVRenderer, JSONRenderer)
    kind = ExportKind.REWARDS

    @_export_schema(
        "report_rewards_export",
        "Every reward of a range, as CSV (streamed)",
        "One row per reward issued in the range (by `issued_at`, local days), oldest first, as "
        "of the moment in `X-Export-As-Of`: rows issued later are left out, and all rows come "
        "from one consistent snapshot.",
        examples.REPORT_REWARDS_EXPORT,
    )
    def get(self, request, partnership_id: str):
        scope, _ = _scope(request, ReportRangeSerializer)
        export = csv_export_start(kind=self.kind, rows=RowFilter.of_scope(scope))
        name = f"{self.kind}-{scope.mode}-{scope.first_day}-{scope.last_day}.csv"
        return streaming(export.lines(), filename=name, as_of=export.as_of)


class ReversalExportApi(RewardExportApi):
    kind = ExportKind.REVERSALS

    @_export_schema(
        "report_reversals_export",
        "Every reversal (clawback) of a range, as CSV (streamed)",
        "One row per reward adjustment made in the range (by its `created_at`): a partial "
        "reversal is one row. As of the moment in `X-Export-As-Of`.",
        examples.REPORT_REVERSALS_EXPORT,
    )
    def get(self, request, partnership_id: str):
        return super().get(request, partnership_id)

"""CSV answers: a table DRF renders for ``?format=csv`` (or ``Accept: text/csv``), and the
lines streamed exports write.

DRF reads the ``format`` query parameter as its renderer override. ``FormatNegotiation`` lets a
known ``format`` win over the Accept header (``format=csv`` is CSV whatever the client accepts)
and leaves an unknown one to the view's own validation (a 422 naming the field, not DRF's bare
404). Errors are always the JSON envelope, also when CSV was asked for (``CsvOrJsonMixin``).
"""

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.http import StreamingHttpResponse
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

CSV_MEDIA_TYPE = "text/csv"


@dataclass(frozen=True)
class CsvTable:
    columns: Sequence[str]
    rows: Iterable[Sequence[object]]
    headers: dict[str, str] = field(default_factory=dict)  # HTTP headers of the answer


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """RFC 4180 lines (CRLF), quoting only where needed."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


class CSVRenderer(BaseRenderer):
    media_type = CSV_MEDIA_TYPE
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if not isinstance(data, CsvTable):  # a view without a CSV form: never reached
            raise TypeError("CSVRenderer renders a CsvTable")
        return csv_text([data.columns, *data.rows]).encode()


class FormatNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        wanted = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        for renderer in renderers:
            if wanted and renderer.format == wanted:
                return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)

    def filter_renderers(self, renderers, format):
        # A format no renderer has: the view refuses it itself; meanwhile Accept decides.
        return renderers


class CsvOrJsonMixin:
    """For an APIView that answers JSON or CSV: errors stay JSON envelopes."""

    renderer_classes = (JSONRenderer, CSVRenderer)
    content_negotiation_class = FormatNegotiation

    def wants_csv(self, request) -> bool:
        return isinstance(request.accepted_renderer, CSVRenderer)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


def csv_response(table: CsvTable) -> Response:
    return Response(table, headers=table.headers)


def streaming_csv_response(
    lines: Iterator[str], *, filename: str, as_of: datetime
) -> StreamingHttpResponse:
    """Sent as the lines come; ``X-Export-As-Of``: the moment the rows reflect."""
    return StreamingHttpResponse(
        lines,
        content_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Export-As-Of": as_of.isoformat(),
            "Cache-Control": "no-store",
        },
    )

"""The physio's report on one device, as CSV and as a one-page PDF (downloads).

The figures are :func:`caregiver.report.report_for`'s; the PDF library (fpdf2, the
``caregiver`` extra) is imported on the first PDF asked for, so a service installed
without it still serves everything else and answers a PDF request with a clear 503.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from caregiver.report import Report, file_name, report_csv, report_for
from caregiver.routes.site import Site

log = logging.getLogger(__name__)


def _pdf(report: Report) -> bytes | None:
    try:
        from caregiver.report_pdf import report_pdf
    except ImportError as exc:
        log.error("no PDF report: %s (install retroguard[caregiver])", exc)
        return None
    return report_pdf(report)


def routes(site: Site) -> list[BaseRoute]:
    backend = site.backend

    def report_of(device_id: str) -> Report | None:
        if backend.store.device(device_id) is None:
            return None
        return report_for(
            backend.store,
            device_id,
            backend.device_name(device_id),
            backend.config.zone,
            backend.clock(),
        )

    def download(body: bytes, media_type: str, name: str) -> Response:
        return Response(
            body,
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",  # a patient's figures: not kept by proxies
            },
        )

    @site.authed
    async def csv_report(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        report = await run_in_threadpool(report_of, device_id) if site.may_see(
            request, device_id
        ) else None  # fmt: skip
        if report is None:
            return site.not_found("device")
        body = report_csv(report).encode("utf-8")
        return download(body, "text/csv; charset=utf-8", file_name(report, "csv"))

    @site.authed
    async def pdf_report(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        report = await run_in_threadpool(report_of, device_id) if site.may_see(
            request, device_id
        ) else None  # fmt: skip
        if report is None:
            return site.not_found("device")
        body = await run_in_threadpool(_pdf, report)
        if body is None:
            return PlainTextResponse(
                "PDF reports need the caregiver extra: pip install 'retroguard[caregiver]'",
                status_code=503,
            )
        return download(body, "application/pdf", file_name(report, "pdf"))

    return [
        Route("/devices/{device_id}/report.csv", csv_report, methods=["GET"]),
        Route("/devices/{device_id}/report.pdf", pdf_report, methods=["GET"]),
    ]

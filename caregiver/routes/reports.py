"""The physio's report on one walker of one device, as CSV and as a one-page PDF (downloads;
``?walker=`` a walker id of the device's roster or sessions, default: the one who walked last;
another id answers 404 "no walker ... on ...", never another walker's report). Sessions
spanning more than ten years of weeks (a wrong clock's date: :data:`core.progress.MAX_WEEKS`)
answer 422 saying which week, not a file of a row for every week since year 2.

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
from caregiver.walkers import UnknownWalker, offered
from core.progress import WeekSpanTooLong
from core.protocol.walker import DEFAULT_WALKER

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

    def report_of(device_id: str, asked: str | None) -> Report | None:
        """The report, None for no such device; :class:`UnknownWalker` for a walker the device
        does not have."""
        store = backend.store
        if store.device(device_id) is None:
            return None
        walkers = offered(store, device_id)  # the roster's, sessions or not
        walker, name = walkers.pick(asked)
        # A device with one walker: the report is about it, by its name (as before profiles);
        # on a shared treadmill the default walker is one of its walkers, named as such.
        alone = walker == DEFAULT_WALKER.id and len(walkers.walkers) == 1
        return report_for(
            store,
            device_id,
            backend.device_name(device_id) if alone else name,
            backend.config.zone,
            backend.clock(),
            walker,
            shared=len(walkers.walkers) > 1,
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

    async def asked_report(request: Request) -> Report | Response:
        """The report the request asks for, or the 404 answer: no such device (or one this
        caregiver may not see), or no such walker on it."""
        device_id = request.path_params["device_id"]
        if not site.may_see(request, device_id):
            return site.not_found("device")
        try:
            report = await run_in_threadpool(
                report_of, device_id, request.query_params.get("walker")
            )
        except UnknownWalker as exc:
            return PlainTextResponse(str(exc), status_code=404)
        except WeekSpanTooLong as exc:  # a session dated by a wrong clock: said, not made
            return PlainTextResponse(f"No report: {exc}.", status_code=422)
        return site.not_found("device") if report is None else report

    @site.authed
    async def csv_report(request: Request) -> Response:
        report = await asked_report(request)
        if isinstance(report, Response):
            return report
        body = report_csv(report).encode("utf-8")
        return download(body, "text/csv; charset=utf-8", file_name(report, "csv"))

    @site.authed
    async def pdf_report(request: Request) -> Response:
        report = await asked_report(request)
        if isinstance(report, Response):
            return report
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

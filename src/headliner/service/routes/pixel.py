"""The tracking pixel: ``GET /pixel/{token}.gif`` counts an open and always answers a GIF.

A mail client fetches it with no API key and shows whatever comes back, so
every answer is the same 1x1 transparent GIF with ``200``: a bad token, an
unknown decision, a late or repeated open and even an unavailable database
count nothing and tell the client nothing (the service's log says why). The
token (:class:`~headliner.service.auth.PixelSigner`) is what proves the open.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from headliner.core.errors import HeadlinerError
from headliner.service.deps import context_of

logger = logging.getLogger("headliner.service")

#: A 1x1 transparent GIF (GIF89a, one palette entry, 43 bytes).
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)

router = APIRouter(tags=["opens"])


# Not in the OpenAPI document: it is for mail clients, not for programs, and it has
# no error to document (the decisions' ``open_pixel`` field says how to use it).
@router.get("/pixel/{token}.gif", response_class=Response, include_in_schema=False)
async def open_pixel(token: str, request: Request) -> Response:
    """Count the open of the send whose ``open_pixel`` this is (once), and answer a 1x1 GIF.

    Needs no API key: the token is signed with ``HEADLINER_PIXEL_SECRET``.
    """
    context = context_of(request)
    ids = None if context.pixel is None else context.pixel.read(token)
    if ids is not None:
        try:
            result = await context.run(context.service.record_open, *ids)
        except HeadlinerError as exc:  # never an error page for a mail client
            logger.warning("pixel open not counted", extra={"error": str(exc)})
        else:
            context.metrics.opens.labels(result.value).inc()
    return Response(
        PIXEL_GIF,
        media_type="image/gif",
        headers={"Cache-Control": "no-store, private", "Pragma": "no-cache"},
    )

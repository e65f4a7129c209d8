"""The tracking pixel: ``GET /pixel/{token}.gif`` stores an open and always answers a GIF.

A mail client fetches it with no API key and shows whatever comes back, so
every answer is the same 1x1 transparent GIF with ``200``: a bad token, an
unknown decision, a late or repeated open and even an unavailable database
count nothing and tell the client nothing (the service's log says why). The
token (:class:`~headliner.service.auth.PixelSigner`) is what proves the open.

Each fetch is stored as an ``open`` event with its User-Agent and client
address. A pixel cannot tell a reader from a privacy proxy (Apple Mail
Privacy Protection fetches every pixel on delivery), so its events are never
flagged as machine-made; the open counts, once, only in an experiment whose
KPI is opens.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from headliner.core.errors import HeadlinerError
from headliner.service.deps import context_of
from headliner.service.schemas import MAX_USER_AGENT, ip_address_text, unsafe_text

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
    """Store an open of the send whose ``open_pixel`` this is, and answer a 1x1 GIF.

    The open counts (once) when the experiment's KPI is opens. Needs no API
    key: the token is signed with ``HEADLINER_PIXEL_SECRET``.
    """
    context = context_of(request)
    ids = None if context.pixel is None else context.pixel.read(token)
    if ids is not None:
        try:
            result = await context.run(
                context.service.record_event,
                *ids,
                "open",
                machine=False,  # a pixel cannot tell
                user_agent=_user_agent(request),
                proxy_address=_client_address(request),
            )
        except HeadlinerError as exc:  # never an error page for a mail client
            logger.warning("pixel open not recorded", extra={"error": str(exc)})
        else:
            context.metrics.count_event(result)
    return Response(
        PIXEL_GIF,
        media_type="image/gif",
        headers={"Cache-Control": "no-store, private", "Pragma": "no-cache"},
    )


def _user_agent(request: Request) -> str | None:
    """The request's User-Agent as it can be stored: control characters dropped, cut short.

    Refusing it, as the API refuses such text, would refuse the open.
    """
    value = request.headers.get("user-agent")
    if not value:
        return None
    if unsafe_text(value):
        value = "".join(c for c in value if not unsafe_text(c))
    return value[:MAX_USER_AGENT] or None


def _client_address(request: Request) -> str | None:
    """The client's IP address, or None when the server cannot tell (or it is no IP)."""
    host = request.client.host if request.client is not None else None
    if host is None:
        return None
    try:
        return ip_address_text(host)
    except ValueError:
        return None

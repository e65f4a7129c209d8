"""The analyst's dashboard: server-rendered pages at ``/`` and ``/experiments/{id}``.

Not part of the /v1 API (left out of the OpenAPI document). Jinja2 templates
and static files ship in the package; charts are drawn by plotly.js, served
from the ``plotly`` wheel under a versioned URL: the pages work offline.

Access: once any API key exists, the pages need one too. It is entered once on
``/login`` (POSTed, never in a URL), then kept in an HttpOnly, SameSite=Strict
cookie, ``Secure`` over HTTPS; ``POST /logout`` forgets it. A read-only key is
enough. The access log records paths only, never bodies or cookies.

:func:`render_experiment` also writes the HTML report
(``headliner experiments report ID --html FILE``): the same page with its
styles, scripts and data inlined and no refresh.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import version
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from markupsafe import Markup
from starlette import status as http
from starlette.concurrency import run_in_threadpool

from headliner.core.errors import AuthError, NotFoundError
from headliner.service.clock import readable_time
from headliner.service.dashboard import (
    FORMATS,
    LIST_FILTERS,
    ExperimentRow,
    fmt_duration,
    fmt_int,
    fmt_pct,
    fmt_points,
    fmt_prob,
    fmt_time,
)
from headliner.service.deps import AppContext, ContextDep
from headliner.service.routes import CheckedRoute
from headliner.service.schemas import ErrorPublic

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

#: The cookie that keeps the dashboard's API key.
KEY_COOKIE = "headliner_key"
#: How long the browser keeps it.
KEY_COOKIE_SECONDS = 30 * 86400
#: Seconds between refreshes of the experiment page.
REFRESH_SECONDS = 5

STATUS_LABELS = {
    "running": "running",
    "burn_in": "burn-in",
    "winner_declared": "winner declared",
    "completed": "completed",
    "archived": "archived",
}
_FILTERS: tuple[tuple[str | None, str], ...] = (
    (None, "All"),
    *((value, STATUS_LABELS[value].capitalize()) for value in LIST_FILTERS),
)


# --- rendering -------------------------------------------------------------------------
def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _raw(value: Any) -> str:
    """A value as a ``data-value`` attribute: its JSON text ("" for None)."""
    if value is None:
        return ""
    return json.dumps(_finite(value))


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+,.0f}".replace("-", "−")


def _pvalue(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.0001" if value < 0.0001 else f"{value:.2g}"


def _clock(when: float | str | None) -> str:
    return readable_time(when, missing="–")


def _page_json(data: Mapping[str, Any]) -> Markup:
    # Inside <script>: no "<", ">" or "&" may end the element or start a comment.
    text = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@functools.cache
def environment() -> jinja2.Environment:
    """The templates, with the filters that format numbers the way the pages show them."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("headliner.service", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    signed = _signed
    env.filters.update(
        raw=_raw,
        format_as=lambda value, fmt: signed(value) if fmt == "signed" else FORMATS[fmt](value),
        int_=fmt_int,
        pct0=lambda value: fmt_pct(value, 0),
        pct1=fmt_pct,
        prob=fmt_prob,
        points=fmt_points,
        signed=signed,
        pvalue=_pvalue,
        duration=fmt_duration,
        when=fmt_time,
        clock=_clock,
        status_label=lambda value: STATUS_LABELS.get(value, value),
        page_json=_page_json,
    )
    return env


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str


def _read_static(name: str) -> bytes:
    return (resources.files("headliner.service") / "static" / name).read_bytes()


@functools.cache
def _own_assets() -> dict[str, tuple[str, _Asset]]:
    """The dashboard's own CSS and JS by name: (URL with a content hash, asset)."""
    out: dict[str, tuple[str, _Asset]] = {}
    for name, media_type in (("dashboard.css", "text/css"), ("dashboard.js", "text/javascript")):
        body = _read_static(name)
        stem, dot, ext = name.rpartition(".")
        digest = hashlib.sha256(body).hexdigest()[:12]
        out[name] = (f"/static/{stem}.{digest}{dot}{ext}", _Asset(body, media_type))
    return out


def _plotly_url() -> str:
    return f"/static/plotly-{version('plotly')}.min.js"


@functools.cache
def plotly_js() -> str:
    """plotly.min.js from the ``plotly`` wheel."""
    from plotly.offline import get_plotlyjs

    text: str = get_plotlyjs()
    return text


def _assets(inline: bool) -> dict[str, Any]:
    own = _own_assets()
    if inline:
        return {
            "inline": True,
            "css": own["dashboard.css"][1].body.decode("utf-8"),
            "js": own["dashboard.js"][1].body.decode("utf-8"),
            "plotly": plotly_js(),
        }
    return {
        "inline": False,
        "css_url": own["dashboard.css"][0],
        "js_url": own["dashboard.js"][0],
        "plotly_url": _plotly_url(),
    }


def _render(template: str, *, inline: bool = False, logout: bool = False, **context: Any) -> str:
    return (
        environment()
        .get_template(template)
        .render(assets=_assets(inline), home="#" if inline else "/", logout=logout, **context)
    )


def render_list(
    rows: list[ExperimentRow], status: str | None, *, error: str | None = None, logout: bool
) -> str:
    """The experiments list."""
    return _render(
        "list.html", rows=rows, status=status, filters=_FILTERS, error=error, logout=logout
    )


def render_experiment(
    data: Mapping[str, Any], *, standalone: bool = False, logout: bool = False, url: str = ""
) -> str:
    """The experiment page from :meth:`Dashboard.page` data.

    ``standalone``: the HTML report, one file with everything inlined and no
    refresh; otherwise the live page, which refreshes from ``url``.
    """
    refresh = None if standalone else {"url": url, "seconds": REFRESH_SECONDS}
    return _render("experiment.html", inline=standalone, logout=logout, data=data, refresh=refresh)


def render_blocks(data: Mapping[str, Any]) -> dict[str, str]:
    """The experiment page's changing blocks as HTML, for the page to swap in."""
    module = environment().get_template("blocks.html").make_module({})
    names = ["status", "leaderboard", "legend", "diagnostics", "health"]
    if data.get("plan") is not None:
        names.append("plan")
    blocks = {name: str(getattr(module, name)(data)) for name in names}
    blocks["updated"] = str(module.updated(data, REFRESH_SECONDS))  # type: ignore[attr-defined]
    return blocks


def _message(heading: str, message: str, status_code: int, logout: bool) -> HTMLResponse:
    html = _render("message.html", heading=heading, message=message, logout=logout)
    return HTMLResponse(html, status_code=status_code)


# --- access ----------------------------------------------------------------------------
def _signed_in(request: Request, context: AppContext) -> bool:
    """Whether the request may see the dashboard (always, while no API key exists)."""
    try:
        context.keys.check(request.cookies.get(KEY_COOKIE))
    except AuthError:
        return False
    return True


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", http.HTTP_303_SEE_OTHER)


def _safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# --- pages -----------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
async def experiments_page(
    request: Request, context: ContextDep, status: str | None = None
) -> Response:
    """The experiments, newest first; ``?status=`` filters them."""
    if not _signed_in(request, context):
        return _to_login(request)
    logout = context.keys.auth_required()
    if status is not None and status not in LIST_FILTERS:
        shown = ", ".join(LIST_FILTERS)
        error = f"Unknown status {status!r}: choose one of {shown}."
        html = render_list([], None, error=error, logout=logout)
        return HTMLResponse(html, status_code=http.HTTP_422_UNPROCESSABLE_CONTENT)
    rows = await run_in_threadpool(context.dashboard.rows, status)
    return HTMLResponse(render_list(rows, status, logout=logout))


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
async def experiment_page(experiment_id: str, request: Request, context: ContextDep) -> Response:
    """One experiment: status, leaderboard, charts, gain, health, plan against actual."""
    if not _signed_in(request, context):
        return _to_login(request)
    logout = context.keys.auth_required()
    try:
        data = await run_in_threadpool(context.dashboard.page, experiment_id)
    except NotFoundError as exc:
        return _message("Not found", str(exc), http.HTTP_404_NOT_FOUND, logout)
    url = f"/experiments/{quote(experiment_id, safe='')}/data"
    return HTMLResponse(render_experiment(data, logout=logout, url=url))


@router.get("/experiments/{experiment_id}/data")
async def experiment_data(experiment_id: str, request: Request, context: ContextDep) -> Response:
    """The experiment page's data and its blocks as HTML (what the page refreshes from)."""
    if not _signed_in(request, context):
        return JSONResponse(
            ErrorPublic.body("Sign in on /login first.", "unauthorized", ("cookie", KEY_COOKIE)),
            status_code=http.HTTP_401_UNAUTHORIZED,
        )
    data = await run_in_threadpool(context.dashboard.page, experiment_id)
    body = {
        "data": _finite(data),
        "blocks": render_blocks(data),
        "status_label": STATUS_LABELS.get(data["report"]["status"], data["report"]["status"]),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, context: ContextDep, next: str = "/") -> Response:
    """The form where the API key is entered once."""
    if not context.keys.auth_required():
        return RedirectResponse(_safe_next(next), http.HTTP_303_SEE_OTHER)
    return HTMLResponse(_render("login.html", next=_safe_next(next), error=None))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, context: ContextDep) -> Response:
    """Check the key from the form; keep it in the cookie and go on, or say why not."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = form.get("key", [""])[0].strip()
    target = _safe_next(form.get("next", ["/"])[0])
    if not context.keys.auth_required():
        return RedirectResponse(target, http.HTTP_303_SEE_OTHER)
    try:
        context.keys.check(key)
    except AuthError as exc:
        error = "Enter an API key." if not key else str(exc)
        html = _render("login.html", next=target, error=error)
        return HTMLResponse(html, status_code=http.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse(target, http.HTTP_303_SEE_OTHER)
    response.set_cookie(
        KEY_COOKIE,
        key,
        max_age=KEY_COOKIE_SECONDS,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forget the key: the cookie is cleared."""
    response = RedirectResponse("/login", http.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        KEY_COOKIE,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The dashboard's CSS and JS (by content hash) and plotly.js (by version), kept a year."""
    forever = {"Cache-Control": "public, max-age=31536000, immutable"}
    if name == _plotly_url().rpartition("/")[2]:
        body = await run_in_threadpool(plotly_js)
        return Response(body, media_type="text/javascript", headers=forever)
    for url, asset in _own_assets().values():
        if url.rpartition("/")[2] == name:
            return Response(asset.body, media_type=asset.media_type, headers=forever)
    raise NotFoundError(f"No static file {name!r}.")

"""Web pages. They call the same scoped services as the API, so a page can never show more than the
caller's API token would."""

from __future__ import annotations

import secrets
from functools import lru_cache
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from computelease import __version__
from computelease.auth import service as auth_service
from computelease.auth.core import LoginThrottle, Principal
from computelease.auth.deps import Session
from computelease.auth.models import User
from computelease.errors import Forbidden
from computelease.web import format as fmt
from computelease.web import i18n
from computelease.web.labels import label


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


@lru_cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("computelease.web", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = lambda amount, currency="CNY": fmt.money(amount, currency, i18n.current.get())
    env.filters["large"] = lambda amount, currency="CNY": fmt.large(amount, currency, i18n.current.get())
    env.filters["pct"] = fmt.pct
    env.globals["label"] = label
    return env


def locale_of(request: Request) -> str:
    return i18n.negotiate(
        request.cookies.get(i18n.COOKIE),
        request.headers.get("accept-language"),
        request.app.state.settings.default_locale,
    )


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    expected = request.session.get("csrf")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        raise Forbidden("the form's security token is missing or stale; reload the page and submit again")


Csrf = Depends(check_csrf)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    locale = locale_of(request)
    i18n.current.set(locale)
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            locale=locale,
            locales=i18n.LOCALES,
            csrf_token=csrf_token(request),
            user=getattr(request.state, "user", None),
            principal=getattr(request.state, "web_principal", None),
            version=__version__,
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)


def web_principal(request: Request, session: Session) -> Principal:
    """The logged-in person, from the signed session cookie; otherwise off to the login page."""
    user_id = request.session.get("uid")
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or not user.active:
        request.session.pop("uid", None)
        raise LoginRequired(request.url.path)
    principal = auth_service.principal_for_user(user)
    session.info["actor"] = principal.actor
    request.state.user = user
    request.state.web_principal = principal
    return principal


Viewer = Annotated[Principal, Depends(web_principal)]


def safe_next(target: str | None) -> str:
    """Only same-site relative paths, so the login form cannot bounce people to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login", dependencies=[Csrf])
def login(
    request: Request,
    session: Session,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    keys = (f"user:{username.strip().lower()}", f"ip:{request.client.host if request.client else '-'}")
    i18n.current.set(locale_of(request))
    wait = throttle.retry_after(*keys)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        error = i18n.gettext("Too many failed attempts; try again in %(minutes)s minutes.") % {
            "minutes": minutes
        }
        return render(
            request, "login.html", status_code=429, next=safe_next(next), error=error, username=username
        )
    user = auth_service.authenticate_password(session, username, password)
    if user is None:
        throttle.failed(*keys)
        error = i18n.gettext("Unknown username or wrong password.")
        return render(request, "login.html", next=safe_next(next), error=error, username=username)
    throttle.succeeded(keys[0])
    request.session.clear()  # a fresh session on login: no fixation
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Csrf])
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/") -> Response:
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in i18n.LOCALES:
        response.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@lru_cache
def _plotly_js() -> str:
    return str(files("plotly") / "package_data" / "plotly.min.js")


def install(app: FastAPI) -> None:
    app.state.login_throttle = LoginThrottle()

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(safe_next(exc.next_path))}", status_code=303)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        # Served from the installed plotly package: operators often run without internet.
        return FileResponse(
            _plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    app.mount("/static", StaticFiles(packages=[("computelease.web", "static")]), name="static")
    app.include_router(router)

"""Mounts the explorer's pages, its static files and the offline Swagger UI on an app.

Every explorer URL answers the same small HTML shell; ``static/app.js`` reads the path
and draws the page from the JSON API. Real URLs (not ``#`` fragments) keep pages
bookmarkable and let the browser's back button and "open in new tab" work.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER = "/ui/static/vendor/swagger-ui"
#: explorer paths that answer the shell (the JavaScript tells them apart)
PAGES = ("/ui/", "/ui/searches", "/ui/searches/{search_id}", "/ui/models", "/ui/models/{model_id}", "/ui/compare")


def _shell() -> FileResponse:
    # no-cache: a browser revalidates, so an upgraded package's pages are never stale
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    """Add ``/`` (redirect), the explorer under ``/ui/``, and ``/docs`` from vendored Swagger UI.

    The app must be created with ``docs_url=None, redoc_url=None``: FastAPI's own pages
    load Swagger UI and ReDoc from a CDN, which leaves them blank offline. ReDoc is not
    offered (Swagger UI covers the same schema).
    """
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    async def page() -> FileResponse:
        return _shell()

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route("/ui", root, methods=["GET"], include_in_schema=False)

    oauth_redirect = "/docs/oauth2-redirect"

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — API docs",
                                   swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
                                   oauth2_redirect_url=oauth_redirect)

    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(oauth_redirect, docs_redirect, methods=["GET"], include_in_schema=False)

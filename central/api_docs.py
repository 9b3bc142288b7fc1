"""The interactive API docs (``/docs``, Swagger UI) served entirely from the installed
package, so they work on a network with no internet access.

Swagger UI's JavaScript and CSS come from the ``swagger-ui-py`` package (Apache-2.0; it
ships Swagger UI 5's ``dist`` files, Apache-2.0 too, with their licence beside them) and are
served under ``/docs/assets``. ReDoc (which only loads from a CDN) is not offered.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Swagger UI's distribution files, as installed with the package.
ASSETS = Path(swagger_ui.__file__).parent / "static"
ASSETS_URL = "/docs/assets"


def add_api_docs(app: FastAPI) -> None:
    """Serve ``/docs`` from local assets (create the app with ``docs_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui_html() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

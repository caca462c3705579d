"""The API documentation UI (Swagger UI), served from the vendored copy so it needs no CDN."""

from __future__ import annotations

from litestar.openapi.plugins import SwaggerRenderPlugin

from loopline.webapp.build import Build

SWAGGER = "vendor/swagger-ui-dist/"


def swagger_ui(build: Build) -> SwaggerRenderPlugin:
    """Swagger UI at `/schema` and `/schema/swagger`, every file from this build."""
    return SwaggerRenderPlugin(
        path=["/", "/swagger"],
        js_url=build.asset_url(SWAGGER + "swagger-ui-bundle.js"),
        css_url=build.asset_url(SWAGGER + "swagger-ui.css"),
        standalone_preset_js_url=build.asset_url(SWAGGER + "swagger-ui-standalone-preset.js"),
        favicon=f"<link rel='icon' type='image/png' href='{build.asset_url('icons/icon-192.png')}'>",
    )

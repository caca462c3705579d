"""HTTP routes of the web app: the shell at `/`, the service worker, the manifest, the build's assets.

Caching follows the version model of `build.py`: the shell, `sw.js` and the manifest are
revalidated on every load (`no-cache`), so a deploy is noticed at once; a build's assets
live at paths that name the build and never change (`immutable`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from loopline.webapp.build import Build

REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
TAGS = ["web app"]


def _response(
    body: bytes, media_type: str, cache_control: str, build: Build, headers: dict[str, str] | None = None
) -> Response[bytes]:
    # The build header lets the service worker check that the shell it stores is its own version.
    common = {"Cache-Control": cache_control, "X-Loopline-Build": build.id, "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type=media_type, headers={**common, **(headers or {})})


@get("/", operation_id="web_shell", exclude_from_auth=True, tags=TAGS, security=[])
async def shell(state: State) -> Response[bytes]:
    """The web app's shell page (all of its screens use hash routes)."""
    build: Build = state.build
    return _response(build.index_html, "text/html", REVALIDATE, build)


@get("/sw.js", operation_id="web_service_worker", exclude_from_auth=True, tags=TAGS, security=[])
async def service_worker(state: State) -> Response[bytes]:
    """The service worker, from the root so that its scope is the whole app."""
    build: Build = state.build
    return _response(build.service_worker, "text/javascript", REVALIDATE, build)


@get("/manifest.webmanifest", operation_id="web_manifest", exclude_from_auth=True, tags=TAGS, security=[])
async def manifest(state: State) -> Response[bytes]:
    """The web app manifest (name, icons, colours) that makes the app installable."""
    build: Build = state.build
    return _response(build.manifest, "application/manifest+json", REVALIDATE, build)


@get("/app/{build_id:str}/{path:path}", operation_id="web_asset", exclude_from_auth=True, tags=TAGS, security=[])
async def asset(
    request: Request[Any, Any, Any], state: State, build_id: FromPath[str], path: FromPath[str]
) -> Response[bytes]:
    """A file of the running build; other builds' paths are not served (their pages use their own cache)."""
    build: Build = state.build
    # A lookup in the files read at start-up: no path from the request ever reaches the file system.
    found = build.assets.get(path.lstrip("/")) if build_id == build.id else None
    if found is None:
        raise NotFoundException("No such file in this version of the app.")
    if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        encoded = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return _response(found.gzipped, found.media_type, IMMUTABLE, build, encoded)
    return _response(found.body, found.media_type, IMMUTABLE, build, {"Vary": "Accept-Encoding"})


route_handlers = [shell, service_worker, manifest, asset]

"""The web app as the server delivers it: one build id per tree, caching headers, MIME types,
only the build's own files, and vendored packages that carry their licences."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from loopline.webapp.build import Build
from tests.support import ROOT

PWA = ROOT / "pwa"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def build() -> Build:
    return Build.load(PWA)


def test_the_build_id_is_a_hash_of_the_served_files(tmp_path: Path, build: Build) -> None:
    tree = tmp_path / "pwa"
    shutil.copytree(PWA, tree)
    assert Build.load(tree).id == build.id
    (tree / "README.md").write_text("not served, not part of the version")
    assert Build.load(tree).id == build.id
    (tree / "app" / "main.js").write_text((tree / "app" / "main.js").read_text() + "\n")
    assert Build.load(tree).id != build.id


def test_the_service_worker_precaches_the_shell_and_the_app_but_not_test_or_docs_tools(build: Build) -> None:
    assert "app/main.js" in build.precache
    assert "vendor/preact/preact.mjs" in build.precache
    assert "vendor/zxing-wasm/zxing_reader.wasm" in build.precache
    assert not [path for path in build.precache if path.startswith(("vendor/axe-core/", "vendor/swagger-ui-dist/"))]
    prelude = build.service_worker.decode().split(";\n", 1)[0].removeprefix("const BUILD = ")
    assert json.loads(prelude) == {
        "id": build.id,
        "shell": "/",
        "assets": [build.asset_url(path) for path in build.precache],
    }


async def test_shell_worker_and_manifest_are_revalidated_on_every_load(client: AsyncTestClient[Any]) -> None:
    for path, media_type in [
        ("/", "text/html; charset=utf-8"),
        ("/sw.js", "text/javascript; charset=utf-8"),
        ("/manifest.webmanifest", "application/manifest+json"),
    ]:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-cache", path
        assert response.headers["content-type"] == media_type, path


async def test_the_shell_names_its_build_in_every_asset_url(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/")
    build_id = response.headers["x-loopline-build"]
    assert f'data-build="{build_id}"' in response.text
    assert f'"preact": "/app/{build_id}/vendor/preact/preact.mjs"' in response.text
    assert f'<script type="module" src="/app/{build_id}/app/main.js">' in response.text


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("app/main.js", "text/javascript; charset=utf-8"),
        ("vendor/preact/preact.mjs", "text/javascript; charset=utf-8"),
        ("app/styles/tokens.css", "text/css; charset=utf-8"),
        ("vendor/zxing-wasm/zxing_reader.wasm", "application/wasm"),
        ("icons/icon-512.png", "image/png"),
    ],
)
async def test_build_assets_are_immutable_with_their_media_type(
    client: AsyncTestClient[Any], path: str, media_type: str
) -> None:
    build_id = (await client.get("/")).headers["x-loopline-build"]
    response = await client.get(f"/app/{build_id}/{path}")
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-type"] == media_type
    assert response.content == (PWA / path).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "../../pyproject.toml",
        "%2e%2e/%2e%2e/pyproject.toml",
        "app/../../README.md",
        "/etc/passwd",
        "vendor/vendor.lock.json",
        "vendor/preact/LICENSE",
        "index.html",
        "sw.js",
    ],
)
async def test_only_the_builds_own_files_are_served(client: AsyncTestClient[Any], path: str) -> None:
    build_id = (await client.get("/")).headers["x-loopline-build"]
    assert (await client.get(f"/app/{build_id}/{path}")).status_code == 404


async def test_another_builds_paths_are_not_served(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/app/0123456789abcdef/app/main.js")).status_code == 404


def test_the_manifest_icons_have_their_declared_sizes(build: Build) -> None:
    for icon in json.loads(build.manifest)["icons"]:
        path = icon["src"].removeprefix(build.base)
        width, height = Image.open(PWA / path).size
        assert f"{width}x{height}" == icon["sizes"], path


def test_every_vendored_package_carries_its_licence() -> None:
    lock = json.loads((PWA / "vendor" / "vendor.lock.json").read_text())
    folders = {package["folder"] for package in lock["packages"]}
    assert folders == {path.name for path in (PWA / "vendor").iterdir() if path.is_dir()}
    for folder in folders:
        assert list((PWA / "vendor" / folder).glob("LICEN[CS]E*")), folder


def test_the_barcode_reader_binary_is_the_one_barcode_detector_was_built_for() -> None:
    wasm = (PWA / "vendor" / "zxing-wasm" / "zxing_reader.wasm").read_bytes()
    glue = (PWA / "vendor" / "barcode-detector" / "zxing-exported.js").read_text()
    assert f'"{hashlib.sha256(wasm).hexdigest()}"' in glue


async def test_the_shell_preloads_the_modules_of_its_first_screen_after_its_import_map(
    client: AsyncTestClient[Any],
) -> None:
    page = (await client.get("/")).text
    base = f"/app/{(await client.get('/')).headers['x-loopline-build']}/"
    preloaded = re.findall(r'<link rel="modulepreload" href="([^"]+)">', page)
    assert preloaded[0] == base + "app/main.js"
    # main.js's own imports, a vendored module reached by its import-map name, a module two levels down.
    for path in ("app/views/app.js", "vendor/preact/preact.mjs", "vendor/preact/hooks.mjs", "app/sync/outbox.js"):
        assert base + path in preloaded, path
    # What a screen imports only when it is used (`import()`) is not fetched ahead.
    assert base + "app/ui/scanner.js" not in preloaded
    assert page.index('<script type="importmap">') < page.index('rel="modulepreload"')
    assert all(href.startswith(base) for href in preloaded)


async def test_text_assets_travel_gzipped_to_browsers_that_accept_it(client: AsyncTestClient[Any]) -> None:
    base = f"/app/{(await client.get('/')).headers['x-loopline-build']}/"
    gzipped = await client.get(base + "app/main.js", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.content == (PWA / "app/main.js").read_bytes()  # decoded by the client
    plain = await client.get(base + "app/main.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == (PWA / "app/main.js").read_bytes()
    png = await client.get(base + "icons/icon-512.png", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in png.headers  # already compressed

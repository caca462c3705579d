"""One build of the web app: every file of the pwa/ tree, read once, named by a hash of them all.

The build id changes whenever any served byte changes, so one deploy is one version: the
page, its modules and the service worker's cache all carry the same id, and a page of an
old version can never load a module of the new one (the new server does not serve the old
build's paths; the old service worker's cache still has them).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from loopline.webapp.modules import import_map, static_graph

# Only these kinds of files are served; anything else in the tree (READMEs, licences, the
# vendor lock) stays on disk.
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
}
# Folders of pwa/ served under /app/<build id>/.
ASSET_FOLDERS = ("app", "vendor", "icons")
# Tooling data, not part of the app.
NOT_SERVED = frozenset({"vendor/vendor.lock.json"})
SHELL_FILES = ("index.html", "sw.js", "manifest.webmanifest")
BUILD_ID_LENGTH = 16
ENTRY_MODULE = "app/main.js"
# Text (and WebAssembly) shrinks several times under gzip; PNGs and fonts are compressed already.
COMPRESSIBLE = frozenset({"text/javascript", "text/css", "application/json", "application/wasm", "image/svg+xml"})


def _gzip(body: bytes) -> bytes:
    # mtime 0: the same file gives the same bytes in every process and every deploy.
    return gzip.compress(body, compresslevel=6, mtime=0)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    # The same bytes gzipped, made once at start-up, for browsers that accept it (all do).
    gzipped: bytes | None = None


@dataclass(frozen=True)
class Build:
    id: str
    assets: dict[str, Asset]  # by path relative to pwa/, e.g. "app/main.js"
    precache: tuple[str, ...]  # asset paths the service worker stores for offline use
    index_html: bytes
    service_worker: bytes
    manifest: bytes

    @property
    def base(self) -> str:
        """The URL prefix of this build's assets, ending in a slash."""
        return f"/app/{self.id}/"

    def asset_url(self, path: str) -> str:
        return self.base + path

    @classmethod
    def load(cls, pwa_dir: Path) -> Build:
        shell = {name: (pwa_dir / name).read_bytes() for name in SHELL_FILES}
        assets = _read_assets(pwa_dir)
        build_id = _content_hash({**shell, **{path: asset.body for path, asset in assets.items()}})
        precache = tuple(sorted(path for path in assets if path not in _not_precached(pwa_dir, assets)))
        base = f"/app/{build_id}/"
        index_html = _index_html(shell["index.html"].decode(), base, build_id, assets)
        return cls(
            id=build_id,
            assets=assets,
            precache=precache,
            index_html=index_html,
            service_worker=_service_worker(shell["sw.js"], build_id, base, precache),
            manifest=_manifest(shell["manifest.webmanifest"], base),
        )


@functools.cache
def build_of(pwa_dir: Path) -> Build:
    """The build of `pwa_dir`, read (and compressed) once per process, however many apps it serves."""
    return Build.load(pwa_dir)


def _read_assets(pwa_dir: Path) -> dict[str, Asset]:
    assets = {}
    for folder in ASSET_FOLDERS:
        for path in sorted((pwa_dir / folder).rglob("*")):
            media_type = MEDIA_TYPES.get(path.suffix)
            name = path.relative_to(pwa_dir).as_posix()
            if path.is_file() and media_type and not path.name.startswith(".") and name not in NOT_SERVED:
                body = path.read_bytes()
                assets[name] = Asset(body, media_type, _gzip(body) if media_type in COMPRESSIBLE else None)
    return assets


def _index_html(template: str, base: str, build_id: str, assets: dict[str, Asset]) -> bytes:
    """The shell with its build's paths, and a preload hint for every module the first screen imports."""
    page = Template(template)
    without_hints = page.substitute(base=base, build_id=build_id, modulepreload="")
    sources = {path: asset.body for path, asset in assets.items() if asset.media_type == "text/javascript"}
    graph = static_graph(ENTRY_MODULE, sources, import_map(without_hints, base))
    hints = "\n  ".join(f'<link rel="modulepreload" href="{base}{path}">' for path in graph)
    return page.substitute(base=base, build_id=build_id, modulepreload=hints).encode()


def _content_hash(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        body = files[name]
        # Length-prefixed, so moving bytes from one file to the next still changes the hash.
        digest.update(f"{name}\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()[:BUILD_ID_LENGTH]


def _not_precached(pwa_dir: Path, assets: dict[str, Asset]) -> set[str]:
    """Vendored packages the lock file marks `"precache": false` (test and docs tools)."""
    lock = json.loads((pwa_dir / "vendor" / "vendor.lock.json").read_text())
    folders = {f"vendor/{package['folder']}/" for package in lock["packages"] if not package["precache"]}
    return {path for path in assets if path.startswith(tuple(folders))}


def _service_worker(source: bytes, build_id: str, base: str, precache: tuple[str, ...]) -> bytes:
    """sw.js with its build prepended: new bytes for every build, which is how browsers notice an update."""
    build: dict[str, Any] = {"id": build_id, "shell": "/", "assets": [base + path for path in precache]}
    return b"const BUILD = " + json.dumps(build, indent=1).encode() + b";\n\n" + source


def _manifest(source: bytes, base: str) -> bytes:
    manifest = json.loads(source)
    for icon in manifest["icons"]:
        icon["src"] = base + icon["src"]
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode()

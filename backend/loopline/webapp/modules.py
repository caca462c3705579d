"""The modules a page of the web app imports before it can draw: the static import graph of
its entry module, for `<link rel="modulepreload">` in the shell.

Without the hints the browser finds the graph one level at a time (a module's imports are
known only once it has arrived), so a warm start waits for as many round trips — to the
service worker's cache — as the graph is deep. With them every module is requested at once.
Dynamic `import()`s are left out: they load what a screen needs only when it opens.
"""

from __future__ import annotations

import json
import posixpath
import re

# `import x from 'y'`, `import {a} from"y"` (minified), `import 'y'`, `export * from 'y'`;
# never `import('y')` or `import.meta`.
_STATIC_IMPORT = re.compile(
    r"""\b(?:import\s*(?:[\w*$\s{},]+?\s*from\s*)?|export\s*(?:\*(?:\s*as\s+[\w$]+)?|\{[^}]*\})\s*from\s*)["']([^"']+)["']"""
)
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)


def import_map(index_html: str, base: str) -> dict[str, str]:
    """The shell's import map as asset paths relative to the build (`preact` → `vendor/preact/preact.mjs`)."""
    found = _IMPORT_MAP.search(index_html)
    imports: dict[str, str] = json.loads(found.group(1))["imports"] if found else {}
    return {name: url.removeprefix(base) for name, url in imports.items() if url.startswith(base)}


def static_graph(entry: str, sources: dict[str, bytes], bare: dict[str, str]) -> list[str]:
    """`entry` and every module it reaches through static imports, in the order first met."""
    order: list[str] = []
    pending = [entry]
    while pending:
        path = pending.pop(0)
        if path in order or path not in sources:
            continue
        order.append(path)
        for specifier in _STATIC_IMPORT.findall(sources[path].decode("utf-8", "replace")):
            resolved = bare.get(specifier)
            if resolved is None and specifier.startswith("."):
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), specifier))
            if resolved is not None:
                pending.append(resolved)
    return order

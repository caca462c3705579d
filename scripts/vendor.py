"""Vendor the PWA's npm packages into pwa/vendor/ from the pins in pwa/vendor/vendor.lock.json.

Usage: scripts/vendor            fetch every pinned tarball, check it, extract the kept files
       scripts/vendor --repin N  record the registry's integrity for package N's pinned version
                                 (after editing its version in the lock file), then vendor

Each tarball comes from the npm registry through `npm pack` and must match the sha512
integrity recorded in the lock file, so a changed or substituted tarball stops the run.
Only the files the lock file names are kept (ES modules, the wasm binary, CSS, and the
package's licence), each under pwa/vendor/<folder>/; anything else in that folder is removed,
so a rerun on the same pins gives the same tree. pwa/vendor/README.md is written from the
lock file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "pwa" / "vendor"
LOCK = VENDOR / "vendor.lock.json"
LICENCE_NAMES = ("LICENSE", "LICENCE", "LICENSE.md", "LICENSE.txt", "COPYING")


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def registry_integrity(name: str, version: str) -> str:
    return subprocess.check_output(["npm", "view", f"{name}@{version}", "dist.integrity"], text=True).strip()


def fetch_tarball(name: str, version: str, into: Path) -> bytes:
    report = subprocess.check_output(
        ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(into)], text=True
    )
    return (into / json.loads(report)[0]["filename"]).read_bytes()


def extract(package: dict[str, Any], tarball: Path) -> None:
    target = VENDOR / package["folder"]
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    files: dict[str, str] = package["files"]
    if not any(Path(kept).name in LICENCE_NAMES for kept in files.values()):
        raise SystemExit(f"{package['name']}: the lock file keeps no licence file")
    with tarfile.open(tarball) as archive:
        for source, kept in files.items():
            member = archive.extractfile(f"package/{source}")
            if member is None:
                raise SystemExit(f"{package['name']}: {source} is not a file in the tarball")
            destination = target / kept
            if destination.resolve().parent != target.resolve():
                raise SystemExit(f"{package['name']}: {kept} would land outside {target}")
            destination.write_bytes(member.read())


def vendor(package: dict[str, Any], workdir: Path) -> None:
    name, version = package["name"], package["version"]
    data = fetch_tarball(name, version, workdir)
    if sri_sha512(data) != package["integrity"]:
        raise SystemExit(f"{name}@{version}: tarball integrity {sri_sha512(data)} != pinned {package['integrity']}")
    tarball = workdir / f"{package['folder']}.tgz"
    tarball.write_bytes(data)
    extract(package, tarball)
    print(f"vendored {name}@{version} → pwa/vendor/{package['folder']}/")


def readme(packages: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        f"| `{p['name']}` | {p['version']} | `{p['folder']}/` | {'yes' if p['precache'] else 'no'} | {p['why']} |"
        for p in packages
    )
    return f"""# pwa/vendor/

Third-party code the PWA loads, copied from the npm registry by `scripts/vendor` (written by it
too: edit `vendor.lock.json` or the script, not this file). Nothing loads from a CDN; the app
reaches these modules through the import map in `pwa/index.html`, so there is one copy of
Preact for the app, its hooks and signals.

| package | version | folder | precached | why |
| --- | --- | --- | --- | --- |
{rows}

"Precached" packages are part of the offline app shell the service worker stores; the others
are served but not stored offline.

## How it is made

`vendor.lock.json` pins each package: name, version, the registry's `dist.integrity` (sha512),
the folder it lands in, and which files of the tarball to keep under which name (ES modules,
the wasm binary, CSS and the licence). `scripts/vendor` runs `npm pack` for each pin, refuses
a tarball whose sha512 differs from the pin, and replaces the package's folder with only the
kept files. A rerun on the same pins gives the same files.

## How to update a package

1. Read the package's changelog; set the new `version` in `vendor.lock.json` (and adjust
   `files` if its layout changed: `npm pack NAME@VERSION` and `tar tzf` show the tarball).
2. `scripts/vendor --repin NAME` records the registry's integrity for the new version and
   vendors everything.
3. Check the diff, run the browser tests (`scripts/test tests/browser`), commit the lock file
   and the folder together.

`zxing-wasm` must stay at the version `barcode-detector` depends on (`npm view
barcode-detector@VERSION dependencies`): barcode-detector bundles zxing-wasm's JavaScript and
loads only the binary from here (see `pwa/app/platform/barcode-detector.js`).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repin", metavar="NAME", help="record the registry's integrity for NAME's pinned version")
    args = parser.parse_args()
    lock = json.loads(LOCK.read_text())
    packages: list[dict[str, Any]] = lock["packages"]
    if args.repin:
        package = next((p for p in packages if p["name"] == args.repin), None)
        if package is None:
            raise SystemExit(f"{args.repin} is not in {LOCK}")
        package["integrity"] = registry_integrity(package["name"], package["version"])
        LOCK.write_text(json.dumps(lock, indent=2, ensure_ascii=False) + "\n")
    with tempfile.TemporaryDirectory() as workdir:
        for package in packages:
            vendor(package, Path(workdir))
    (VENDOR / "README.md").write_text(readme(packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())

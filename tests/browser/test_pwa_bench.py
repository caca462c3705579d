"""`scripts/bench pwa` stays runnable: its driver once, at tiny sizes, without timing anything.

The figures are checked by reading the benchmark's output (BENCHMARKS.md), never here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.browser.conftest import CHROMIUM, _unavailable
from tests.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pwa_bench", ROOT / "scripts" / "benchmarks" / "pwa.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figures(summary: dict[str, object]) -> None:
    assert set(summary) == {"median", "max", "runs"}
    assert isinstance(summary["median"], float | int)


def test_the_pwa_benchmark_runs_once_at_tiny_sizes_and_reports_every_figure(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    report = load_bench().run(reps=1, mutations=20, rates=[1], keep=tmp_path)

    assert report["machine"]["chromium"]
    assert report["batches_shown"] > 0
    first, warm, outbox = report["first_sign_in"]["1x"], report["warm_start"]["1x"], report["offline_mutations"]["1x"]
    for summary in (
        first["to_batch_list_ms"],
        first["cold_shell_to_sign_in_form_ms"],
        *report["first_sign_in"]["baseline_python_engine"].values(),
        warm["to_batch_list_ms"],
        warm["shell_rendered_ms"],
        warm["document_from_service_worker_ms"],
        warm["baseline_static_page_from_server_ms"],
        outbox["queue_ms"],
        outbox["sync_ms"],
        outbox["sync_and_pull_ms"],
        *report["offline_mutations"]["baseline_python_engine"].values(),
    ):
        figures(summary)
    assert report["offline_mutations"]["mutations"] == 20
    for part in ("own_code", "shell", "vendor_precached", "vendor_not_precached"):
        assert report["code_size"][part]["files"] > 0
        assert report["code_size"][part]["gzip_per_file_kb"] > 0
    assert isinstance(report["code_size"]["met"], bool)

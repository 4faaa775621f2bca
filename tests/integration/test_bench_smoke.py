"""Each benchmark runs at its --quick size (a smoke test: no timing is asserted here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["command_intake", "replay", "snapshots", "latency", "size", "alarm_storm"])
def test_benchmark_runs_at_its_quick_size(name: str) -> None:
    if not (ROOT / "bench" / f"{name}.py").exists():
        pytest.fail(f"bench/{name}.py is missing")
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", "--store", "sqlite", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert '"benchmark"' in done.stdout

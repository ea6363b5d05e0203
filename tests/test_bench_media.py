"""The media benchmark keeps working: a short run prints the JSON line the issue asks for."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media_signals import need_ffmpeg

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_media_benchmark_reports_cpu_lateness_and_recordings():
    need_ffmpeg()
    out = subprocess.run([sys.executable, "-m", "benchmarks.media", "--json", "--only",
                          "--calls", "8", "--seconds", "2"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(c))
    assert got["calls"] == 8 and got["implementation"] in ("cython", "python")
    assert abs(got["cpu_cores"] - got["plane_cpu_cores"] - got["recorder_cpu_cores"]) <= 0.002, got
    assert got["recorder_cpu_cores"] > 0, got  # the worker process is counted
    assert sum(got["lateness_ms_hist"].values()) == got["ticks"] > 0  # every tick is placed
    worst = max(100, got["max_lateness_ms"])
    assert 0 < got["lateness_ms_p50"] <= got["lateness_ms_p99"] <= worst, got
    assert got["late_frames"] >= 0 and len(got["load_avg_1m"]) == 2
    assert got["recorded_ok"] == 8 and got["recorder_dropped_bytes"] == 0, got

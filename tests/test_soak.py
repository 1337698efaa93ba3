"""The soak benchmark runs end to end (a few seconds, a few users, the tiny model)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(300)


def test_soak_script_runs_and_reports(tiny_model_dir, tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.soak",
            "--model",
            str(tiny_model_dir),
            "--users",
            "6",
            "--minutes",
            "0.25",
            "--think",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={"THO_MAX_WORK": "4", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["users"] == 6 and result["heavy_users"] == 1 and result["max_work"] == 4
    assert result["errors"] == 0 and result["ordinary"]["poems"] > 0
    assert result["rss_mb"]["end"] > 0 and result["in_flight_at_end"] == 0
    assert "ordinary:" in done.stdout and "RSS MB" in done.stdout

"""The quick part of the fault-injection script: a run killed at a random moment loses no
checkpoint and resumes exactly, a diverging loss and bad settings each end with one line."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 and rlimits: Linux")
def test_quick_torture_run() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "torture.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "| kill -9 (lm) | 1 | 0 | 1/1 | - |" in result.stdout

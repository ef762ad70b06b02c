"""The folder tree is the architecture: the pure core imports no server, database or torch."""

import subprocess
import sys

CORE = ["spec", "metrics", "datasets", "splits", "home", "scoring", "ladder", "rules", "grading",
        "shakeup"]
HEAVY = ["fastapi", "starlette", "uvicorn", "sqlalchemy", "torch", "httpx"]


def test_core_imports_nothing_heavy():
    code = (f"import sys; import {', '.join('harness.' + m for m in CORE)}; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_torch_only_under_baselines_and_lab():
    code = ("import sys, harness.service, harness.server.app, harness.cli, harness.client; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

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


# The labs that train networks; every other lab module (and the numpy labs' commands) runs
# without torch, so it may import neither torch nor these, not even inside a function.
TORCH_LABS = {"nets", "hessian", "batch", "optimizers", "diagnose"}


def _imports(path, package: str) -> set[str]:
    """Every module ``path`` imports, anywhere in it, relative imports resolved."""
    import ast
    from importlib.util import resolve_name

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}    # `from . import nets`
    return found


def test_torch_only_in_the_labs_that_train_networks():
    from pathlib import Path

    import harness

    root = Path(harness.__file__).parent
    files = [(p, "harness.lab") for p in (root / "lab").glob("*.py") if p.stem not in TORCH_LABS]
    files += [(root / "cli" / f"{name}.py", "harness.cli") for name in ("lab", "lab_overfit")]
    assert len(files) >= 7, files      # common, attack, holdout, overfit, report, ...
    torch_labs = {f"harness.lab.{m}" for m in TORCH_LABS}
    bad = {f"{path.relative_to(root)}: {module}" for path, package in files
           for module in _imports(path, package)
           if module.split(".")[0] == "torch" or ".".join(module.split(".")[:3]) in torch_labs}
    assert not bad, ("torch-free lab code imports torch or a lab that trains networks: "
                     f"{sorted(bad)}")

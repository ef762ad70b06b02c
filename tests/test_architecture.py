"""The folder tree is the architecture: the pure core imports no server, database or torch."""

import subprocess
import sys

CORE = ["spec", "metrics", "datasets", "plugins", "splits", "home", "scoring", "ladder", "rules",
        "grading", "csvsafe", "shakeup", "roster", "images"]
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


# Who may import whom, by layer (bottom to top). A module may import its own layer and the
# layers below; "store" only from the service and the operations tools.
LAYERS = {
    "core": ["errors", "spec", "metrics", "datasets", "plugins", "splits", "home", "scoring",
             "ladder", "rules", "grading", "shakeup", "csvsafe", "uncertainty", "team_chart",
             "roster", "images"],
    "store": ["store"],
    "service": ["service"],
    "boundary": ["schemas", "admin_schemas"],
    "front": ["server", "client", "admin_client"],
}
ORDER = ["core", "store", "service", "boundary", "front"]
STORE_USERS = {"service", "operations"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "harness" or len(parts) < 2:
        return None
    return next((layer for layer, names in LAYERS.items() if parts[1] in names), None)


def test_each_layer_imports_only_the_layers_below():
    from pathlib import Path

    import harness

    root = Path(harness.__file__).parent
    bad = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        module = "harness." + ".".join(rel.with_suffix("").parts)
        package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
        mine = _layer(module)
        for imported in _imports(path, package):
            theirs = _layer(imported)
            if theirs == "store" and rel.with_suffix("").parts[0] not in STORE_USERS | {"store"}:
                bad.append(f"{rel}: {imported} (the store is the service's)")
            elif mine and theirs and ORDER.index(theirs) > ORDER.index(mine):
                bad.append(f"{rel} ({mine}): {imported} ({theirs})")
            elif mine in ("core", "store", "service") and imported.split(".")[:2] in (
                    ["harness", "cli"], ["harness", "server"], ["harness", "client"]):
                bad.append(f"{rel} ({mine}): {imported} (a front end)")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))

"""demo/ sits on top: it seeds through the other apps, and nothing but tests and bench
imports it (a product that needed the demo to run would ship the demo)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = {
    "demo",
    "tests",
    "faults",
    "bench",
    ".venv",
    "node_modules",
    "var",
    "static",
    "templates",
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_app_imports_the_demo():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] not in OUTSIDE and "demo" in _imports(path)
    ]
    assert offenders == []


def test_the_planner_is_pure():
    """No ORM, no settings, no clock: bench/data.py imports it before Django is set up."""
    modules = _imports(ROOT / "demo" / "fleet.py")
    assert not modules & {"django", "incidents", "customers", "probes", "reports", "time"}

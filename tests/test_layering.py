"""The apps depend one way: pages and feeds on the domain, the domain on the shared
plumbing, nothing on a page. An import cycle between apps (or the plumbing reaching
up into an app) fails here, with the files that make it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = (
    "plumbing",
    "incidents",
    "fleet",
    "probes",
    "customers",
    "reports",
    "public",
    "notifications",
    "reliability",
    "demo",
)
# Who may import whom, from the bottom up; an app may import only those below it.
ALLOWED = {
    "plumbing": set(),
    "incidents": {"plumbing"},
    "fleet": {"incidents", "plumbing"},
    "probes": {"incidents", "plumbing"},
    "customers": {"incidents", "plumbing", "probes"},
    "reports": {"customers", "incidents", "plumbing"},
    "public": {"incidents", "plumbing"},
    "notifications": {"customers", "incidents", "plumbing"},
    "reliability": {"customers", "incidents", "plumbing", "public"},
    "demo": {
        "customers",
        "fleet",
        "incidents",
        "notifications",
        "plumbing",
        "probes",
        "reliability",
        "reports",
    },
}


def _imported_apps(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(APPS)


def test_each_app_imports_only_the_apps_below_it():
    unexpected = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for other in sorted(_imported_apps(path) - {app} - ALLOWED[app]):
                unexpected.append(f"{path.relative_to(ROOT)} imports {other}")
    assert unexpected == []


def test_the_allowed_imports_have_no_cycle():
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in ALLOWED[start]
        )

    assert [app for app in APPS if reaches(app, app)] == []

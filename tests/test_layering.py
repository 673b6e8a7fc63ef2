"""The layout is the architecture: imports point down only, and nothing forms a cycle.

Read from the source with :mod:`ast` (nothing is imported): every ``import`` counts, at module
level, inside functions and under ``TYPE_CHECKING`` alike, since each is a dependency a reader
has to follow.

    service.cli ──▶ service.grpc ──▶ service.usecases ──▶ geodata
         │               │                                 ▲
         └───────────────┴──▶ service.store ───────────────┘

service.http (the HTTP/JSON port) sits beside service.grpc and reuses it (conversions, errors,
keys, limits, the servicer's bodies); service.grpc.server alone starts it (the one composition root).
service.render (the trip map) is below both front ends that draw it, service.cli and service.http.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geodata", "service")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a`` and, when it is a module, ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports are not used in this code base; resolve them anyway
                base = module_name(path).split(".")[: -node.level]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


MODULES: dict[str, Path] = {
    module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
}
IMPORTS: dict[str, set[str]] = {name: imports_of(path) for name, path in MODULES.items()}


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offences(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in IMPORTS.items()
        if in_package(name, package)
        for target in targets
        if any(in_package(target, bad) for bad in forbidden)
    )


# package → what it must never import
RULES = {
    # the domain core: plain Python and numpy; no transport, no store, no embedded data
    "geodata": ("service", "seeds", "grpc", "grpc_status", "google.protobuf", "google.rpc", "redis", "routerisk"),
    # the use cases: callable unchanged from a REST or batch front end
    "service.usecases": (
        "grpc",
        "grpc_status",
        "google.protobuf",
        "google.rpc",
        "redis",
        "routerisk",
        "prometheus_client",
        "service.grpc",
        "service.http",
        "service.store",
        "service.cli",
    ),
    # state and storage: no transport, and nothing above it
    "service.store": ("grpc", "grpc_status", "routerisk", "service.grpc", "service.http", "service.cli"),
    # the server does not know its command line; Redis is the store's business
    "service.grpc": ("service.cli", "redis"),
    # the HTTP port: a transport like service.grpc, no command line, no Redis of its own
    "service.http": ("service.cli", "redis"),
    # drawing a trip (routerisk map, the dispatcher page): plain data and functions in, no transport, no store
    "service.render": ("grpc", "grpc_status", "redis", "service.grpc", "service.http", "service.cli", "service.store"),
    # a client of the server: the stubs, not Redis (the store's modules do that for `layers activate`)
    "service.cli": ("redis",),
    # settings and logging are below everything in service
    "service.config": ("service.grpc", "service.http", "service.store", "service.cli", "service.usecases"),
    "service.logs": ("service.grpc", "service.http", "service.store", "service.cli", "service.usecases"),
}


@pytest.mark.parametrize("package", sorted(RULES))
def test_imports_point_down_only(package: str) -> None:
    assert any(in_package(name, package) for name in MODULES), f"no module in {package}"
    assert offences(package, RULES[package]) == []


def test_the_top_of_service_stays_small() -> None:
    top = sorted(p.name for p in (ROOT / "service").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "config.py", "logs.py"]


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over the imports between our own modules (geodata
    and service): none may have more than one module."""
    graph = {name: sorted(t for t in targets if t in MODULES and t != name) for name, targets in IMPORTS.items()}
    # a package's __init__ is imported on the way to its modules; it holds no code here, so it is no edge back
    graph = {name: [t for t in targets if MODULES[t].name != "__init__.py"] for name, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert [c for c in cycles if not set(c) <= CYCLES_PENDING] == []


# none is tolerated (geodata.layers ↔ geodata.adaptive went with geodata.mixture below both)
CYCLES_PENDING: set[str] = set()


def test_init_modules_hold_no_code() -> None:
    """Package ``__init__`` files are docstrings only, so importing one module loads no other."""
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        body = ast.parse(path.read_text(encoding="utf-8")).body
        code = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert code == [], f"{name} runs code on import"


# The one module allowed to use the private Cython API of h3 (``h3._cy``); everything else goes
# through it, so an h3 upgrade that moves the private API breaks one module, not several.
H3_PRIVATE_WRAPPER = "geodata.h3x"
H3_PRIVATE_PENDING: set[str] = set()


def test_private_h3_api_only_in_its_wrapper() -> None:
    users = sorted(
        name
        for name, targets in IMPORTS.items()
        if any(in_package(t, "h3._cy") or t == "h3._cy" for t in targets)
        or any(
            isinstance(node, ast.Attribute) and node.attr == "_cy"
            for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8")))
        )
    )
    assert H3_PRIVATE_WRAPPER in users
    assert set(users) - {H3_PRIVATE_WRAPPER} <= H3_PRIVATE_PENDING, users


def test_the_command_line_starts_without_the_server_or_geopandas() -> None:
    """Every ``routerisk`` command imports the whole app; the server's modules (and geopandas and
    pyarrow, which the layer builders need) load only in the commands that use them."""
    code = (
        "import sys, service.cli.app; "
        "print(sorted(m for m in ('geopandas', 'pyarrow', 'service.grpc.server', 'service.store.serving') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

"""The package's layer order, checked from the source: no upward import, no cycle.

swalab is built in layers, each allowed to use only the layers below it and itself::

    utilities/theory → envs → swi → llm → experiments → analysis → cli (testing beside it)

:func:`check_layers` reads every module with :mod:`ast` (nothing is imported, so a module
that would fail to import is still checked) and reports each import of a higher layer and
each cycle between modules. Lazy imports inside functions count: a dependency is a
dependency whenever it is taken.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Layers from the bottom; each entry lists the module prefixes that belong to it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "utilities",
        (
            "swalab._validate",
            "swalab._json",
            "swalab._plotting",
            "swalab._measure",
            "swalab.reference",
            "swalab.metrics",
            "swalab.stats",
            "swalab.transition",
        ),
    ),
    ("theory", ("swalab.theory",)),
    ("envs", ("swalab.envs",)),
    ("swi", ("swalab.swi",)),
    ("llm", ("swalab.llm",)),
    ("guard", ("swalab.guard",)),
    ("experiments", ("swalab.experiments",)),
    ("analysis", ("swalab.analysis",)),
    ("cli", ("swalab.cli", "swalab.testing", "swalab.replicate")),
)


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    Attributes:
        kind: ``"upward"`` (an import of a higher layer), ``"cycle"`` or ``"unplaced"`` (a
            module no layer claims).
        message: One line naming the modules and layers involved.
    """

    kind: str
    message: str


def layer_of(module: str) -> int | None:
    """Index of ``module``'s layer in :data:`LAYERS` (longest matching prefix wins).

    The package itself (``swalab``: its version) sits at the bottom; its other top-level
    modules must each be listed.
    """
    if "." not in module:
        return 0
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), index)
    return None if best is None else best[1]


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root`` (the folder holding ``__init__.py``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package's modules that ``module`` imports anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in known:  # ``from pkg import submodule``
                    yield target
                elif base in known:
                    yield base


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package modules it imports (itself excluded)."""
    found = modules(root)
    known = set(found)
    return {m: set(_imports(m, p, known)) - {m} for m, p in found.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def check_layers(root: str | Path | None = None) -> list[Violation]:
    """Every upward import, unplaced module and import cycle in the package at ``root``.

    Args:
        root: The package folder (default: the installed ``swalab``).
    """
    if root is None:
        root = Path(__file__).resolve().parent.parent
    graph = import_graph(Path(root))
    out = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        if layer is None:
            out.append(Violation("unplaced", f"{module}: no layer claims this module"))
            continue
        for target in sorted(targets):
            target_layer = layer_of(target)
            if target_layer is not None and target_layer > layer:
                out.append(
                    Violation(
                        "upward",
                        f"{module} ({LAYERS[layer][0]}) imports {target} "
                        f"({LAYERS[target_layer][0]}), a higher layer",
                    )
                )
    for cycle in _cycles(graph):
        out.append(Violation("cycle", "import cycle: " + " ↔ ".join(cycle)))
    return out

"""The page's shape (web/js/), read from its source without a browser: no import circle between
its modules, and no module over ``MAX_LINES`` lines."""

from __future__ import annotations

import re
from pathlib import Path

JS = Path(__file__).resolve().parents[2] / "web" / "js"
MAX_LINES = 400

#: The edges from one module to another: static ``import ... from "./x.js"`` (and ``export ... from``),
#: dynamic ``import("./x.js")``, and a module's URL made to load it, as a worker is:
#: ``new Worker(new URL("./x.js", import.meta.url))`` (or the URL handed to the worker's client).
EDGE_PATTERNS = [
    re.compile(r'^\s*(?:import|export)\b[^;"\']*?\bfrom\s*["\'](\.{1,2}/[^"\']+)["\']', re.M | re.S),
    re.compile(r'^\s*import\s*["\'](\.{1,2}/[^"\']+)["\']', re.M),
    re.compile(r'\bimport\s*\(\s*["\'](\.{1,2}/[^"\']+)["\']\s*\)'),
    re.compile(r'\bnew\s+URL\s*\(\s*["\'](\.{1,2}/[^"\']+\.m?js)["\']\s*,\s*import\.meta\.url'),
]
#: JSDoc type imports (``@typedef {import('./x.js').T} T``) are erased at run time: no edge.
COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def _modules() -> list[Path]:
    return sorted(JS.rglob("*.js"))


def import_graph() -> dict[str, list[str]]:
    """module (path relative to web/js) -> the modules it imports, in source order."""
    graph: dict[str, list[str]] = {}
    for path in _modules():
        source = COMMENTS.sub("", path.read_text())
        edges: list[str] = []
        for pattern in EDGE_PATTERNS:
            for target in pattern.findall(source):
                resolved = (path.parent / target).resolve()
                name = resolved.relative_to(JS).as_posix() if resolved.is_relative_to(JS) else str(resolved)
                if name not in edges:
                    edges.append(name)
        graph[path.relative_to(JS).as_posix()] = edges
    return graph


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Every elementary cycle's strongly connected component, as one cycle through it (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
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
            if len(component) > 1 or node in graph.get(node, []):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: dict[str, list[str]], component: set[str]) -> list[str]:
    """One concrete cycle inside a strongly connected component (a breadth-first path back to its start)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in graph.get(node, []):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt in component and nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]


def test_graph_sees_every_kind_of_edge(tmp_path):
    """The parser finds static, re-export, dynamic and worker edges, and ignores comments."""
    source = """
        import { a } from "./a.js";
        import {
          b,
        } from "./b.js";
        export { c } from "./c.js";
        import "./d.js";
        const e = await import("./e.js");
        const w = new Worker(new URL("./f.js", import.meta.url), { type: "module" });
        const client = new Client(new URL("./g.js", import.meta.url));
        const picture = new URL("./h.png", import.meta.url);
        // import { x } from "./x.js";
        /** @typedef {import('./y.js').Y} Y */
    """
    edges = []
    stripped = COMMENTS.sub("", source)
    for pattern in EDGE_PATTERNS:
        edges += pattern.findall(stripped)
    assert sorted(edges) == ["./a.js", "./b.js", "./c.js", "./d.js", "./e.js", "./f.js", "./g.js"]
    graph = {"a": ["b"], "b": ["c", "d"], "c": ["a"], "d": []}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


def test_page_modules_import_no_circle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles under web/js: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_page_module_is_over_the_line_limit():
    long = {p.relative_to(JS).as_posix(): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"page modules over {MAX_LINES} lines (split them): {long}"

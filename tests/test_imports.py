"""No import cycle in the package: every import statement, function-level ones included.

The layers point down (cli -> training, gradcheck, hub -> models -> nn -> backend; nn asks the
engine's dispatch). This walks the source of minillm/ and kernels/ (as minillm.kernels), builds
the graph of module-to-module imports, and fails on any cycle, naming it.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules():
    """{module name: source path} for minillm/ and kernels/ (installed as minillm.kernels)."""
    found = {}
    for base, package in ((ROOT / "minillm", "minillm"), (ROOT / "kernels", "minillm.kernels")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package] + parts)] = path
    return found


def imports_of(name, path, known):
    """The modules of ``known`` that the file imports (relative imports resolved)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            # "from package import module" depends on the module; "from module import name" on the module
            names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
        else:
            continue
        for target in names:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def find_cycle(graph):
    """One cycle of the graph as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def graph():
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_the_walk_sees_the_layers():
    g = graph()
    assert "minillm.kernels.dispatch" in g["minillm.nn.norm"]
    assert "minillm.models.gpt" in g["minillm.hub"]
    assert "minillm.nn.attention" in g["minillm.kernels.cpu.attention"]


def test_the_cycle_finder_finds_a_planted_cycle():
    g = graph()
    g["minillm.backend"] = g["minillm.backend"] | {"minillm.hub"}
    assert find_cycle(g) is not None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_models_never_import_the_hub_and_backend_imports_no_layer():
    g = graph()
    assert not any("minillm.hub" in g[m] for m in g if m.startswith("minillm.models"))
    assert not any(t.startswith(("minillm.nn", "minillm.models")) for t in g["minillm.backend"])

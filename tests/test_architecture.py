"""The import graph keeps the architecture's direction: no cycle between modules, `measure` never imports
`rlhf`, `toy_bandit` imports neither, and library code never imports an entry module (`__main__`)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGES = ("measure", "rlhf", "toy_bandit")
# package -> packages it may import (the longest matching prefix counts); the study composes and validates
# the toy bandit's steps too, so it reads that app's schema
ALLOWED = {"measure": {"measure"}, "rlhf": {"rlhf", "measure"}, "rlhf.study": {"rlhf", "measure", "toy_bandit"},
           "toy_bandit": {"toy_bandit"}}


def allowed(module: str) -> set:
    return ALLOWED[max((p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len)]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, modules: set) -> set:
    """Project modules imported anywhere in the file (function-level imports too), resolved to module names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                while name not in modules and "." in name:  # `from pkg import symbol` -> pkg
                    name = name.rsplit(".", 1)[0]
                if name in modules:
                    found.add(name)
    return found


def import_graph() -> dict:
    files = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    modules = set(files)
    return {name: project_imports(path, modules) - {name} for name, path in files.items()}


def find_cycle(graph: dict):
    """A cycle as a list of modules, or None (iterative depth-first search with colours)."""
    state, parent = {}, {}
    for root in graph:
        if root in state:
            continue
        stack = [(root, iter(sorted(graph[root])))]
        state[root] = "open"
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = "done"
                stack.pop()
            elif state.get(child) == "open":
                cycle, at = [child], node
                while at != child:
                    cycle.append(at)
                    at = parent[at]
                return cycle[::-1]
            elif child not in state:
                state[child], parent[child] = "open", node
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle():
    assert set(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()})) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_packages_import_only_in_the_allowed_direction():
    wrong = [(m, dep) for m, deps in import_graph().items() for dep in deps
             if dep.split(".")[0] not in allowed(m)]
    assert not wrong, wrong


def test_library_code_never_imports_an_entry_module():
    wrong = [(m, dep) for m, deps in import_graph().items() for dep in deps if dep.endswith("__main__")]
    assert not wrong, wrong


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "measure.config" in graph["rlhf.study.steps"]  # imported inside compose_app
    assert "rlhf.stages.reward" in graph["rlhf.stages.ppo_stage"]  # imported inside a function
    assert allowed("rlhf.study.steps") >= {"toy_bandit"} and "toy_bandit" not in allowed("rlhf.stages.ppo")

"""The shape of skinlib: its modules import each other in one direction, in the order ``skinlib/__init__.py`` lists.

Every ``import skinlib.X`` and ``from skinlib(.X) import ...`` counts, at the top of a module or inside a function
(an import inside a function hides a circle from Python, not from a reader).
"""

import ast
import re
from pathlib import Path

import pytest

import skinlib

PACKAGE = Path(skinlib.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def imported_modules(name):
    """The skinlib modules that module ``name`` imports anywhere in its code (the package itself left out)."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("skinlib.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("skinlib."):
                found.add(node.module.split(".")[1])
            elif node.module == "skinlib":
                found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found |= {(node.module or alias.name).split(".")[0] for alias in node.names}
    return found - {name}


GRAPH = {name: imported_modules(name) for name in MODULES}


def find_cycle(graph):
    """One import circle as a list of modules (first repeated last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
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


def test_the_cycle_finder_finds_a_circle_hidden_in_a_function():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert imported_modules("predict") >= {"artefacts", "images"}  # Top-level and function-level imports are seen.


def test_no_skinlib_module_imports_another_in_a_circle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, f"skinlib modules import each other in a circle: {' -> '.join(cycle)}"


def listed_modules():
    """The modules named by the list in skinlib/__init__.py's docstring, in its order."""
    return re.findall(r"^- :mod:`skinlib\.(\w+)`", skinlib.__doc__, flags=re.MULTILINE)


def test_the_package_docstring_lists_every_module_once():
    listed = listed_modules()
    assert sorted(listed) == MODULES, (f"not listed in skinlib/__init__.py: {sorted(set(MODULES) - set(listed))}; "
                                       f"listed but missing: {sorted(set(listed) - set(MODULES))}")


def test_modules_import_only_modules_listed_above_them():
    order = {name: position for position, name in enumerate(listed_modules())}
    upward = [f"{name} imports {target}" for name, targets in GRAPH.items() for target in sorted(targets)
              if name in order and target in order and order[target] > order[name]]
    assert not upward, "a module imports one listed below it in skinlib/__init__.py: " + "; ".join(upward)


def reachable(name):
    seen, todo = set(), [name]
    while todo:
        for target in GRAPH.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize("name", ["predict", "app"])
def test_the_lesion_checker_does_not_import_training_code(name):
    assert "train" not in reachable(name), f"{name} reaches skinlib.train through its imports"

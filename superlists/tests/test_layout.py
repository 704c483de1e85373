"""The layout's rule: no import cycles between the repository's top-level packages."""

import ast
from itertools import pairwise
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

ROOT = Path(settings.BASE_DIR)


def top_level_packages(root=ROOT):
    return sorted(path.name for path in root.iterdir() if (path / "__init__.py").is_file())


def imported_names(tree):
    """Every absolute module name a module imports, anywhere in it, with its line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


def package_imports(root=ROOT):
    """{(importer, imported): "file:line"} between top-level packages, tests left out."""
    # A test module is imported by nothing but the test runner, so no running code passes
    # through it; site-wide tests (superlists/tests/test_fuzz.py) rightly import every app.
    packages = top_level_packages(root)
    edges = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "tests" in path.relative_to(root).parts:
                continue
            importer = path.relative_to(root).parts[0]
            tree = ast.parse(path.read_text(), filename=str(path))
            for name, line in imported_names(tree):
                imported = name.split(".")[0]
                if name.split(".")[0] in packages and imported != importer:
                    where = f"{path.relative_to(root)}:{line}"
                    edges.setdefault((importer, imported), where)
    return edges


def cycles(edges):
    """Each cycle in the package graph once, as a list of packages ending where it starts."""
    graph = {}
    for importer, imported in edges:
        graph.setdefault(importer, set()).add(imported)
    found = set()

    def walk(path):
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == path[0]:
                # Start each cycle at its smallest name, so it is found once.
                at = path.index(min(path))
                found.add(tuple(path[at:] + path[:at]))
            elif nxt not in path and nxt > path[0]:
                walk([*path, nxt])

    for start in sorted(graph):
        walk([start])
    return [[*cycle, cycle[0]] for cycle in sorted(found)]


def describe(cycle, edges):
    steps = pairwise(cycle)
    return (
        " -> ".join(cycle)
        + "\n"
        + "\n".join(f"    {a} imports {b} in {edges[a, b]}" for a, b in steps)
    )


class ImportCyclesTest(SimpleTestCase):
    def test_no_import_cycles_between_top_level_packages(self):
        edges = package_imports()
        found = [describe(cycle, edges) for cycle in cycles(edges)]
        if found:
            self.fail("Import cycles between top-level packages:\n" + "\n".join(found))

    def test_a_cycle_is_found_and_named(self):
        edges = {("a", "b"): "a/x.py:1", ("b", "c"): "b/y.py:2", ("c", "a"): "c/z.py:3"}
        self.assertEqual(cycles(edges), [["a", "b", "c", "a"]])
        self.assertIn("b imports c in b/y.py:2", describe(["a", "b", "c", "a"], edges))
        self.assertEqual(cycles({("a", "b"): "", ("b", "c"): ""}), [])

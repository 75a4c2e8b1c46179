"""The shape of infra/: packages by area that import downwards only, and a test module beside
every component module (tests/infra/<area>/test_<module>.py)."""

from __future__ import annotations

import ast
import graphlib

import pytest

from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit

INFRA = REPO / "infra"
PACKAGES = sorted(p.name for p in INFRA.iterdir() if (p / "__init__.py").exists())


def modules() -> dict[str, ast.Module]:
    return {p.relative_to(REPO).as_posix(): ast.parse(p.read_text()) for p in INFRA.glob("*/*.py")}


def package_imports() -> dict[str, set[str]]:
    """Which packages of infra/ each package imports (not counting itself)."""
    uses: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for path, tree in modules().items():
        package = path.split("/")[1]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("infra."):
                used = node.module.split(".")[1]
                if used != package:
                    uses[package].add(used)
    return uses


def test_the_areas_are_packages():
    assert PACKAGES == ["admin", "config", "data", "image", "monitoring", "network", "service", "swarm"]


def test_no_package_imports_one_that_imports_it_back():
    order = list(graphlib.TopologicalSorter(package_imports()).static_order())  # CycleError on a cycle
    assert order[0] == "config" and package_imports()["config"] == set()


def test_a_cycle_would_be_found():
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({**package_imports(), "config": {"swarm"}}).prepare()


def test_every_component_module_has_its_test_module():
    for path, tree in modules().items():
        components = [
            node.name
            for node in tree.body
            if isinstance(node, ast.ClassDef)
            and any(ast.unparse(base) == "pulumi.ComponentResource" for base in node.bases)
        ]
        if components:
            area, module = path.removeprefix("infra/").removesuffix(".py").split("/")
            assert (REPO / "tests" / "infra" / area / f"test_{module}.py").exists(), f"{path}: {components}"

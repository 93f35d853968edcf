"""One dependency direction: core <- stages (export, graphfix, tf_import) <- runners <- evaluate <- verify <- bench
<- d2tf (the driver, whose `d2tf` command runs every tool) <- tests. A module imports only from its own package or a
lower layer; the three stages never import each other (each reads the previous stage's file, not its code)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = {"core": 0, "export": 1, "graphfix": 1, "tf_import": 1, "runners": 2, "evaluate": 3, "verify": 4,
          "bench": 5, "d2tf": 6, "tests": 7}
STAGES = {"export", "graphfix", "tf_import"}


def project_imports(path):
    """(line, top-level project package) of every import in the file, function-level imports included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in LAYERS:
                yield node.lineno, name.split(".")[0]


def violations(package, root=ROOT):
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for line, target in project_imports(path):
            if target == package:
                continue
            sideways = package in STAGES and target in STAGES
            if LAYERS[target] > LAYERS[package] or sideways:
                found.append(f"{path.relative_to(root)}:{line} imports {target}")
    return found


@pytest.mark.parametrize("package", sorted(set(LAYERS) - {"tests"}))
def test_imports_go_down_the_layers_only(package):
    assert (ROOT / package).is_dir()
    assert violations(package) == []


def test_the_scan_sees_upward_and_sideways_imports(tmp_path):
    """The check itself can fail: a core module importing the driver, a stage importing another, are reported."""
    for package, text in (("core", "def f():\n    from d2tf import convert\n"), ("tf_import", "import graphfix.cli\n")):
        (tmp_path / package).mkdir()
        (tmp_path / package / "bad.py").write_text(text)
    assert violations("core", tmp_path) == ["core/bad.py:2 imports d2tf"]
    assert violations("tf_import", tmp_path) == ["tf_import/bad.py:1 imports graphfix"]

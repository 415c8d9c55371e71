"""Every import inside the package points down the layers (or stays inside its own subpackage).

Layers, lowest first; a module may import only from a strictly lower layer or from its own subpackage.
Breaking it on purpose (e.g. ``from ..pipeline.io import x`` in data/) makes this test fail: see
``test_an_upward_import_is_caught``.
"""

import ast
from pathlib import Path

import pseudocoresets

PACKAGE = Path(pseudocoresets.__file__).parent
LAYERS = [
    {"errors", "version"},
    {"utils", "io", "parallel"},
    {"data", "augment", "corruptions", "models", "integrity"},
    {"experts", "samplers"},
    {"objectives", "evaluation", "reference"},
    {"distill"},
    {"fidelity"},
    {"config"},
    {"report"},
    {"pipeline"},
    {"api"},
    {"cli"},
    {"entry", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def top_level(module_path: Path) -> str:
    rel = module_path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_units(module_path: Path, source: str):
    """(line, top-level unit) of every package-internal import, including imports inside functions."""
    package_parts = list(module_path.relative_to(PACKAGE).parent.parts)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts + [a.name] for a in node.names] if not parts else [parts]
            elif node.module and node.module.split(".")[0] == "pseudocoresets":
                names = [node.module.split(".")[1:] or ["__init__"]]
            else:
                continue
            for parts in names:
                unit = parts[0] if parts else "__init__"
                is_module = (PACKAGE / unit).is_dir() or (PACKAGE / f"{unit}.py").is_file()
                yield node.lineno, unit if is_module else "__init__"  # a name of the package root
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "pseudocoresets":
                    yield node.lineno, parts[1] if len(parts) > 1 else "__init__"


def upward_imports(files: dict[Path, str]) -> list[str]:
    bad = []
    for path, source in files.items():
        unit = top_level(path)
        for line, target in imported_units(path, source):
            if target == unit:
                continue
            if target not in RANK or unit not in RANK:
                bad.append(f"{path.relative_to(PACKAGE)}:{line}: {unit} -> {target} (unit not in LAYERS)")
            elif RANK[target] >= RANK[unit]:
                bad.append(
                    f"{path.relative_to(PACKAGE)}:{line}: {unit} (layer {RANK[unit]}) imports {target} "
                    f"(layer {RANK[target]})"
                )
    return bad


def package_files() -> dict[Path, str]:
    return {p: p.read_text() for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_unit_has_a_layer():
    units = {top_level(p) for p in package_files()}
    assert units <= set(RANK), f"add {sorted(units - set(RANK))} to LAYERS"


def test_no_import_points_up():
    assert upward_imports(package_files()) == []


def test_an_upward_import_is_caught():
    files = package_files()
    idx = PACKAGE / "data" / "idx.py"
    files[idx] = files[idx] + "\nfrom ..pipeline.workspace import Workspace\n"
    sampler = PACKAGE / "samplers" / "hmc.py"
    files[sampler] = files[sampler] + "\ndef f():\n    from pseudocoresets.evaluation import metrics\n"
    bad = upward_imports(files)
    assert (
        len(bad) == 2
        and "data (layer 2) imports pipeline" in bad[0]
        and "samplers (layer 3) imports evaluation" in bad[1]
    )

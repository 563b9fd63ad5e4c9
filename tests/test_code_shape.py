"""The package's shape, as the project's style asks: modules of at most 400 lines, functions of at most 60, no
private name used outside its module, and no import cycle between the package's modules (imports at module level)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "toposdf"
MODULES = {path: ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, tree: ast.Module) -> set[str]:
    """The package modules that ``path`` imports at module level (``from .x import y`` counts ``x``, and ``x.y``
    where that is a module)."""
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    known, out = {_name(p) for p in MODULES}, set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            out |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
    return {name for name in out if name in known and name != _name(path)}


def test_modules_and_functions_stay_short():
    too_long = [f"{path.name}: {len(path.read_text().splitlines())} lines" for path in MODULES
                if len(path.read_text().splitlines()) > 400]
    too_long += [f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
                 for path, tree in MODULES.items() for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60]
    assert not too_long


def test_no_private_name_is_used_outside_its_module():
    used = [f"{path.name}:{node.lineno} {alias.name}" for path, tree in MODULES.items() for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) for alias in node.names
            if alias.name.startswith("_") and not alias.name.startswith("__")]
    used += [f"{path.name}:{node.lineno} {node.value.id}.{node.attr}" for path, tree in MODULES.items()
             for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.attr.startswith("_") and not node.attr.startswith("__") and node.value.id not in ("self", "cls")]
    assert not used


def test_the_package_has_no_import_cycle():
    graph = {_name(path): _imports(path, tree) for path, tree in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, trail: list[str]) -> list[str] | None:
        state[module] = 1
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                return trail + [module, other]
            if other not in state and (cycle := visit(other, trail + [module])):
                return cycle
        state[module] = 2
        return None

    cycles = [cycle for module in sorted(graph) if module not in state and (cycle := visit(module, []))]
    assert not cycles, " -> ".join(cycles[0])

"""What a job starts before it works. A job of the tiny run spends most of its seconds importing (torch alone takes
2-3 s, its compiler another 1-3 s on the first optimizer), so the workflow's parse and the jobs that only read meshes,
grids or tables must not import the training stack: every dry run, every cluster job and every mesh job pays it."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "matplotlib", "trimesh", "scipy", "pandas")
# the jobs on meshes, grids and diagrams (persistence starts torch only when it calls cripser, whose package imports
# it), and those that write tables from JSON: none of them runs a network
NO_TORCH = ["synthesize", "split", "normalize", "sample_sdf", "sdf_grid", "persistence", "category_manifest",
            "plot_diagrams", "contact_sheet", "tables", "claims", "training_curves", "figure_methods", "figure_samples",
            "figure_interpolation", "prior_samples", "study_1d"]


def _toposdf_modules(path: Path) -> list[str]:
    return sorted(set(re.findall(r"^from (toposdf[\w.]*) import", path.read_text(), flags=re.M)))


def _heavy_after_importing(modules: list[str]) -> set[str]:
    """The heavy libraries in ``sys.modules`` after a fresh interpreter imports ``modules``."""
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(*sorted(sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(run.stdout.split()) & set(HEAVY)


def test_parsing_the_workflow_imports_none_of_the_heavy_libraries():
    modules = _toposdf_modules(ROOT / "rules" / "common.smk")
    assert "toposdf.layout" in modules  # the shapes' layout and the memory estimate the rules read
    assert _heavy_after_importing(modules) == set()


def test_jobs_without_a_network_do_not_start_torch():
    """One interpreter imports what every such script imports: if the union does not start torch, none does."""
    modules = {script: _toposdf_modules(ROOT / "workflow_scripts" / f"{script}.py") for script in NO_TORCH}
    assert all(modules.values()), [script for script, names in modules.items() if not names]
    union = sorted({name for names in modules.values() for name in names})
    assert "torch" not in _heavy_after_importing(union), union


def test_the_cubical_persistence_still_runs_after_a_light_import():
    """cripser is imported where it is called: the diagrams of a grid computed in a fresh interpreter that imported
    only the topology package (the persistence job's path)."""
    code = ("import numpy as np, sys\nfrom toposdf.topology import cubical_diagrams\nassert 'cripser' not in sys.modules\n"
            "g = np.ones((6, 6, 6)); g[1:5, 1:5, 1:5] = -1; g[2:4, 2:4, 2:4] = 1\n"
            "d = cubical_diagrams(g, tau=2.0)\nprint([len(x) for x in d])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[0] == "[1, 0, 1]"  # a hollow cube: one piece, one void

"""Where shapes live and what a job holds: ShapeNet's synsets and model counts, the external folders' mesh files,
a training job's memory. The Snakefile reads these while it parses, so this module imports the standard library
only: parsing the workflow (every dry run, every cluster job) does not start torch, trimesh or scipy."""

from __future__ import annotations

from pathlib import Path

#: ShapeNetCore.v2 synset ids of the categories the paper uses.
SYNSETS: dict[str, str] = {"chair": "03001627", "table": "04379243", "sofa": "04256520"}
#: Models per category in ShapeNetCore.v2: the training rules' memory estimate where every shape is used.
SHAPENET_MODELS: dict[str, int] = {"chair": 6778, "table": 8436, "sofa": 3173}
#: Training samples larger than this are memory-mapped rather than held (:func:`toposdf.data.load_sdf_samples`'
#: ``spill_bytes``): ShapeNet's chairs at 250,000 samples a shape are about 22 GB; every synthetic preset's are far
#: below it.
SPILL_BYTES = 4 * 2**30
#: The calibration rows of Tables 1 and 2 (``rule calibrate``): the held-out training shapes (the floor) and one
#: fixed blob (the ceiling). They frame the methods rather than compete with them (never bold in the tables), and no
#: method or external row may take their names.
CALIBRATION_ROWS = ("heldout_training", "blob")
#: The mesh formats an external folder may hold (any that trimesh reads as triangles; these are tested).
MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")


def count_test_shapes(n: int, test_fraction: float) -> int:
    """How many of ``n`` shapes a split puts in the test set: ``round(test_fraction * n)``, at least one (and at most
    ``n - 1``) when ``0 < test_fraction`` and ``n >= 2`` (:func:`toposdf.data.split_models`)."""
    count = round(test_fraction * n)
    return min(max(count, 1), n - 1) if test_fraction > 0 and n >= 2 else count


def training_memory_mb(shapes: int, samples_per_shape: int, base_mb: int, spill_bytes: int = SPILL_BYTES) -> int:
    """The memory a training job asks for (``mem_mb``): ``base_mb`` (the network, optimizer, grids, persistence)
    plus twice the training samples it holds (points and distances, 16 bytes a sample; loading briefly holds a shard
    beside them), at most :data:`SPILL_BYTES` of them, beyond which they are memory-mapped. In steps of 1,000 MB."""
    held = min(shapes * samples_per_shape * 16, spill_bytes)
    return int(1000 * -(-(base_mb + 2 * held / 1e6) // 1000))


def mesh_files(folder: str | Path) -> list[Path]:
    """The mesh files of ``folder`` (:data:`MESH_SUFFIXES`, any case), sorted by name; a missing folder raises."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of meshes")
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in MESH_SUFFIXES)

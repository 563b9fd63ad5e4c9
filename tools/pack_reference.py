"""Pack a finished run into ``results/reference/<preset>/seed<N>/``: what a reader needs, without the bulk.

Copies a run's tables, metrics, training logs, figures, job logs and benchmark records, and the config files it
ran with; leaves out what the run can regenerate and what is large (meshes, SDF samples, grids, diagrams,
generated shapes, checkpoints). The per-method prior-sample sheets and the training curves are stored as
thumbnails, since the contact sheet and the figures keep the full-size view. Writes the folder's ``README.md``
(command, commit, machine, wall time) and adds the folder to ``results/reference/current.txt``.

    python tools/pack_reference.py ../run results/reference/cpu_default/seed0 \\
        --command "snakemake --cores all" --commit 1a2b3c4 --wall "106 min" --configs config.yaml
"""

import argparse
import os
import platform
import shutil
import sys
from pathlib import Path

from PIL import Image

KEPT_SUFFIXES = {".csv", ".md", ".tex", ".json", ".png", ".log", ".tsv"}
LEFT_OUT_DIRS = {"shapes", "meshes", "sdf", "grids", "diagrams", "generate", "reference"}
RECORD_DIRS = {"logs", "benchmarks"}
THUMBNAILS = ("prior_samples/", "training_curves.png")


def kept_files(results: Path) -> list[Path]:
    """Files under a run's ``results/`` folder that a reference keeps, relative to it, sorted."""
    return [path.relative_to(results) for path in sorted(results.rglob("*"))
            if path.is_file() and path.suffix in KEPT_SUFFIXES and _kept_folder(path.relative_to(results).parts[:-1])]


def _kept_folder(parts: tuple[str, ...]) -> bool:
    """Job logs and benchmark records are kept whatever they are named after; bulk folders are not."""
    for part in parts:
        if part in RECORD_DIRS:
            return True
        if part in LEFT_OUT_DIRS:
            return False
    return True


def is_thumbnail(relative: Path) -> bool:
    return relative.suffix == ".png" and any(part in relative.as_posix() for part in THUMBNAILS)


def write_thumbnail(source: Path, target: Path, scale: float) -> None:
    """``source`` scaled by ``scale`` (Lanczos), as an optimized PNG."""
    with Image.open(source) as image:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image.convert("RGB").resize(size, Image.LANCZOS).save(target, optimize=True)


def machine() -> str:
    """The CPU model and its widest vector extension: runs are exact only within one kind of machine."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model}, {os.cpu_count()} cores, {vector}"


def readme(title: str, command: str, commit: str, wall: str, configs: list[str], notes: str) -> str:
    lines = [f"# {title}", "", f"- command: `{command}`", f"- commit: {commit}", f"- machine: {machine()}",
             f"- wall time: {wall}", f"- config files: {', '.join(configs) or 'config.yaml'}"]
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"


def register(reference_root: Path, folder: Path) -> None:
    """Add ``folder`` (relative to ``reference_root``) to ``current.txt``, one folder a line, sorted."""
    listing = reference_root / "current.txt"
    entries = set(listing.read_text().split()) if listing.exists() else set()
    entries.add(folder.as_posix())
    listing.write_text("\n".join(sorted(entries)) + "\n")


def pack(results: Path, dest: Path, scale: float = 0.5) -> tuple[int, int]:
    """Copy the kept files of a run's ``results`` folder into ``dest``; returns (files, bytes) written."""
    if not results.is_dir():
        raise SystemExit(f"error: {results} does not exist; give the folder the run was made in")
    files = kept_files(results)
    if not files:
        raise SystemExit(f"error: {results} holds no tables, logs or figures to pack")
    written = 0
    for relative in files:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_thumbnail(relative):
            write_thumbnail(results / relative, target, scale)
        else:
            shutil.copy2(results / relative, target)
        written += target.stat().st_size
    return len(files), written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the folder the run was made in (it holds results/)")
    parser.add_argument("dest", type=Path, help="e.g. results/reference/cpu_default/seed0")
    parser.add_argument("--command", required=True, help="the command that made the run")
    parser.add_argument("--commit", required=True, help="the commit it ran at")
    parser.add_argument("--wall", required=True, help="its wall time, e.g. '106 min'")
    parser.add_argument("--configs", nargs="*", default=["config.yaml"],
                        help="config files of the run, relative to it; copied beside the results")
    parser.add_argument("--notes", default="", help="a paragraph for the README (e.g. what else shared the cores)")
    parser.add_argument("--scale", type=float, default=0.5, help="thumbnail scale (default 0.5)")
    args = parser.parse_args(argv)
    if args.dest.exists() and any(args.dest.iterdir()):
        raise SystemExit(f"error: {args.dest} is not empty; remove it first to repack")
    count, size = pack(args.run / "results", args.dest, args.scale)
    for name in args.configs:
        source = args.run / name
        if not source.is_file():
            raise SystemExit(f"error: config file {source} does not exist")
        (args.dest / Path(name).name).write_bytes(source.read_bytes())
    title = f"{args.dest.parent.name}, {args.dest.name}"
    (args.dest / "README.md").write_text(readme(title, args.command, args.commit, args.wall, args.configs, args.notes))
    root = args.dest.resolve().parent.parent
    if root.name == "reference":  # results/reference/<preset>/<seed>: listed in current.txt
        register(root, args.dest.resolve().relative_to(root))
    else:  # a pack made elsewhere (one category of a run, to be copied in): not a reference folder yet
        print(f"{args.dest} is not under a reference/ folder: not listed in current.txt", file=sys.stderr)
    print(f"{count} files, {size / 1e6:.1f} MB -> {args.dest}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What a finished run's diagrams hold, per homology dimension (``toposdf.diagnostics.diagram_summary``).

PD-LAP gives one number per dimension. This says where it comes from: per shape, how many points lie above the
persistence threshold and their total persistence, and over all of them the median lifetime, the mean birth
and death, and the share born outside the surface (a positive birth: for H1, a ring that closes only in the offset
band, i.e. a broken rail or leg); and H0's points besides the essential class by kind, far pieces (dying at
``--tau``), floating pieces and lumps, with what they cost as PD-LAP extras (``toposdf.diagnostics.h0_kinds``).
Rows, per category: the training and test shapes' ground truth (``diagrams/*.npz`` and
``split.json``), then for each method its samples (``generate/{method}/diagrams.npz``, every z-draw) and, for the
methods with PD generators, the generators' diagrams at ``z ~ N(0, I)`` (``--codes`` codes, seed 0; the targets
of eq. 8 at prior codes; also stage 1b's, where stage 2 started) and at the training shapes' latent means (what
eq. 1 fitted them to). For those, it also
prints where the generators' matched points sit against the training diagrams (``matched_offsets``: mean birth
and death offsets), after stage 1b (``pdgen.pt`` at the stage-1 codes) and after stage 2 (``model.pt``). And for
the samples and the held-out training shapes (the floor's draws, evaluation seed 0), Table 2's H0 and H1 columns
split into matched pairs, extra features and missing ones (``toposdf.metrics.pd_lap_parts``, mean over the
draws). Prints a table and writes JSON.

    python tools/diagram_stats.py results/synthetic --categories chair --out diagram_stats.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from toposdf.checkpoints import cpu_threads, load_checkpoint
from toposdf.data import load_shape_diagrams
from toposdf.diagnostics import diagram_summary, h0_kinds, matched_offsets
from toposdf.calibration import calibration_draws
from toposdf.generation import diagrams_of_generators, draws_of, generator_diagrams, load_model, sample_latents
from toposdf.metrics import pd_lap_parts
from toposdf.models import PDGenerators


def _print(category: str, source: str, method: str, summary: dict[str, float]) -> None:
    dims = "  ".join(f"H{k} {summary[f'h{k}_points']:5.2f} pts, total {summary[f'h{k}_total_persistence']:.4f}, "
                     f"median life {summary[f'h{k}_median_life']:.4f}, birth {summary[f'h{k}_mean_birth']:+.4f} "
                     f"({summary[f'h{k}_born_outside']:.0%} outside)" for k in range(2))
    kinds = "  ".join(f"{kind} {summary[f'{kind}_per_shape']:.3f} ({1e3 * summary[f'{kind}_cost']:.2f})"
                      for kind in ("far", "floating", "lump"))
    print(f"{category:8s} {source:15s} {method:20s} {dims}  H0 pieces: {kinds}", flush=True)


def _print_offsets(category: str, source: str, method: str, offsets: dict[str, float]) -> None:
    dims = "  ".join(f"H{k} {offsets[f'h{k}_matched']:5.2f} matched, birth {offsets[f'h{k}_birth_offset']:+.4f}, "
                     f"death {offsets[f'h{k}_death_offset']:+.4f}" for k in range(3))
    print(f"{category:8s} {source:15s} {method:20s} {dims}", flush=True)


def _print_parts(category: str, source: str, method: str, parts: dict[str, float]) -> None:
    dims = "  ".join(f"H{k} {1e3 * sum(parts[f'h{k}_{p}'] for p in ('matched', 'extra', 'missing')):5.2f} = "
                     f"matched {1e3 * parts[f'h{k}_matched']:5.2f} + extra {1e3 * parts[f'h{k}_extra']:5.2f} "
                     f"({parts[f'h{k}_extra_points']:.2f} pts, {parts[f'h{k}_extra_born_outside']:.0%} outside) + "
                     f"missing {1e3 * parts[f'h{k}_missing']:5.2f} ({parts[f'h{k}_missing_points']:.2f} pts)"
                     for k in range(2))
    print(f"{category:8s} {source:15s} {method:20s} {dims}", flush=True)


def draw_parts(draws, test, threshold: float) -> dict[str, float]:
    """:func:`toposdf.metrics.pd_lap_parts` of H0 and H1, each entry the mean over the draws (NaN-aware)."""
    per_draw = [{f"h{k}_{key}": value for k in range(2)
                 for key, value in pd_lap_parts(draw, test, k, threshold).items()} for draw in draws]
    def mean(values):
        finite = [v for v in values if not np.isnan(v)]
        return float(np.mean(finite)) if finite else float("nan")

    return {key: mean([d[key] for d in per_draw]) for key in per_draw[0]}


def stage1b_generators(train: Path):
    """The stage-1b PD generators (``pdgen.pt``) with the stage-1 checkpoint they were fitted at (the one with the
    method's geometric regularizer); None without ``pdgen.pt``."""
    if not (train / "pdgen.pt").exists():
        return None
    lambda_steik = load_checkpoint(train / "model.pt")["config"]["lambda_steik"]
    for path in sorted((train.parent / "stage1").glob("*/implicit.pt")):
        stage1 = load_checkpoint(path)
        if stage1["config"]["lambda_steik"] == lambda_steik:
            return PDGenerators.from_state(load_checkpoint(train / "pdgen.pt")).eval(), stage1
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run's results folder, e.g. results/synthetic")
    parser.add_argument("--categories", nargs="+", default=None, help="default: every category with a split.json")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every method with generated samples")
    parser.add_argument("--threshold", type=float, default=0.02,
                        help="keep points of persistence above this (default 0.02, the evaluation's "
                             "persistence.min_persistence by default)")
    parser.add_argument("--tau", type=float, default=0.1,
                        help="the filtration's clamp, persistence.tau (default 0.1): an H0 point dying there besides "
                             "the essential class is a far piece")
    parser.add_argument("--codes", type=int, default=1024, help="prior codes for the PD generators (default 1024)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: print only)")
    args = parser.parse_args(argv)
    cpu_threads(1)
    categories = args.categories or sorted(p.parent.name for p in args.run.glob("*/split.json"))
    rows = []

    def add(category: str, source: str, method: str, diagrams) -> None:
        summary = {**diagram_summary(diagrams, args.threshold), **h0_kinds(diagrams, args.threshold, args.tau)}
        rows.append({"category": category, "source": source, "method": method, "shapes": len(diagrams), **summary})
        _print(category, source, method, summary)

    def parts(category: str, source: str, method: str, draws, test) -> None:
        split_up = draw_parts(draws, test, args.threshold)
        rows.append({"category": category, "source": source, "method": method, "draws": len(draws), **split_up})
        _print_parts(category, source, method, split_up)

    def offset(category: str, source: str, method: str, offsets: dict[str, float]) -> None:
        rows.append({"category": category, "source": source, "method": method, **offsets})
        _print_offsets(category, source, method, offsets)

    for category in dict.fromkeys(categories):
        root = args.run / category
        diagram_paths = sorted((root / "diagrams").glob("*.npz"))
        if not (root / "split.json").exists() or not diagram_paths:
            sys.exit(f"{root}: no split.json or diagrams/*.npz (is the run's preprocessing finished?)")
        split = json.loads((root / "split.json").read_text())
        ground = {part: list(load_shape_diagrams(diagram_paths, split[part]).values()) for part in ("train", "test")}
        for part, diagrams in ground.items():
            add(category, "ground truth", part, diagrams)
        floor = calibration_draws(ground["train"], len(ground["test"]), 0, 10)  # the floor row's draws at seed 0
        parts(category, "PD-LAP parts", "held-out train", floor, ground["test"])
        for samples in sorted((root / "generate").glob("*/diagrams.npz")):
            method = samples.parent.name
            if args.methods and method not in args.methods:
                continue
            draws = draws_of(samples)
            add(category, "samples", method, [d for draw in draws for d in draw])
            parts(category, "PD-LAP parts", method, draws, ground["test"])
            model_path = root / "train" / method / "model.pt"
            if model_path.exists():
                model = load_model(model_path, "cpu")
                if model.generators is not None:
                    add(category, "PD gen prior", method,
                        generator_diagrams(model, sample_latents(args.codes, model.latent_size, 0)))
                    at_codes = generator_diagrams(model, model.mu)
                    add(category, "PD gen train", method, at_codes)
                    truth = list(load_shape_diagrams(diagram_paths, model.ids).values())
                    offset(category, "offset stage 2", method, matched_offsets(at_codes, truth))
                    stage1b = stage1b_generators(model_path.parent)
                    if stage1b is not None:  # where stage 2 started: eq. 14 moves the generators from there
                        generators, stage1 = stage1b
                        add(category, "PD gen 1b prior", method,
                            diagrams_of_generators(generators, sample_latents(args.codes, model.latent_size, 0)))
                        truth = list(load_shape_diagrams(diagram_paths, stage1["ids"]).values())
                        offset(category, "offset 1b", method,
                               matched_offsets(diagrams_of_generators(generators, stage1["codes"]["mu"]), truth))
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "threshold": args.threshold, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

"""What eq. 8's matching asks of the synthetic shapes' tunnels, at the start and at the end of stage 2.

Eq. 8 compares the diagram of the network's shape at a code z with the PD generators' diagram at the same z, along
eq. 1's optimal matching; each matched pair pulls the shape's point toward its partner, and a point matched to the
diagonal is shortened away. Where a shape's tunnel goes therefore depends on its partner. This tool decodes the
shapes at ``--codes`` codes z ~ N(0, I) and, per shape, counts the H1 points of persistence above ``--threshold``
by where they are born (inside the surface, or outside it: a ring that closes only in the offset band, a broken
rail) and by their partner: a target born inside (the pair pulls a broken ring closed), a target born outside (it
pulls a tunnel's birth outward, toward a break), or the diagonal (the tunnel is cut). It also counts the targets'
long points, born inside and outside, and those left unmatched.

Rows per method with PD generators: the start of stage 2 (the stage-1 network of the method's geometry with
stage 1b's ``pdgen.pt``) and its end (``model.pt``). The grid is the consistency loss's (``--resolution``, default
40, the CPU default's ``grid.resolution``), every pair kept as in ``train.joint.loss_min_persistence: 0``.

    python tools/consistency_matching.py results/synthetic --categories table --out matching.json
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from diagram_stats import stage1b_generators  # tools/ beside this script
from toposdf.checkpoints import build_decoder_and_codes, cpu_threads, load_checkpoint
from toposdf.generation import TrainedModel, diagrams_of_generators, load_model, sample_latents, shapes_at
from toposdf.topology import pd_distance

KINDS = ("in_to_in", "in_to_out", "in_to_diagonal", "out_to_in", "out_to_out", "out_to_diagonal")


def match_kinds(shape: np.ndarray, target: np.ndarray, threshold: float) -> dict[str, int]:
    """Eq. 1's matching between one shape's H1 points ``(n, 2)`` and its target's ``(m, 2)``: the shape's points of
    persistence above ``threshold`` counted by birth side and partner (``KINDS``: ``in`` born at a level <= 0,
    ``out`` above it), and the target's such points born inside, outside, and not matched to any shape point."""
    shape = np.asarray(shape, np.float64).reshape(-1, 2)
    target = np.asarray(target, np.float64).reshape(-1, 2)
    matching = pd_distance(shape, target, return_matching=True)[1].reshape(-1, 2)
    partner = {int(i): int(j) for i, j in matching if i >= 0}
    counts = dict.fromkeys(KINDS, 0)
    for i, (birth, death) in enumerate(shape):
        if death - birth <= threshold:
            continue
        j = partner.get(i, -1)
        to = "diagonal" if j < 0 else ("in" if target[j, 0] <= 0 else "out")
        counts[f"{'in' if birth <= 0 else 'out'}_to_{to}"] += 1
    long = (target[:, 1] - target[:, 0]) > threshold
    matched = {int(j) for i, j in matching if i >= 0 and j >= 0}
    counts["targets_in"] = int((long & (target[:, 0] <= 0)).sum())
    counts["targets_out"] = int((long & (target[:, 0] > 0)).sum())
    counts["targets_unmatched"] = sum(1 for j in np.flatnonzero(long) if int(j) not in matched)
    return counts


def start_of_stage2(train: Path, method: str) -> TrainedModel | None:
    """The stage-1 network of the method's geometry with stage 1b's PD generators (None without ``pdgen.pt``)."""
    found = stage1b_generators(train)
    if found is None:
        return None
    generators, state = found
    decoder, codes = build_decoder_and_codes(state["model"], state["latent"], state, len(state["ids"]))
    return TrainedModel(decoder.eval().requires_grad_(False), codes.mu.detach(), generators.requires_grad_(False),
                        list(state["ids"]), method, torch.device("cpu"))


def per_shape(model: TrainedModel, z: torch.Tensor, resolution: int, tau: float, threshold: float) -> dict:
    """:func:`match_kinds` summed over the shapes at ``z`` and divided by their number."""
    _, diagrams = shapes_at(model, z, resolution, tau, 0.0)
    targets = diagrams_of_generators(model.generators, z)
    total: dict[str, float] = {}
    for shape, target in zip(diagrams, targets, strict=True):
        for key, value in match_kinds(shape[1], target[1], threshold).items():
            total[key] = total.get(key, 0) + value
    return {key: value / len(z) for key, value in total.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run's results folder, e.g. results/synthetic")
    parser.add_argument("--categories", nargs="+", default=None, help="default: every category with a split.json")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every method with PD generators")
    parser.add_argument("--codes", type=int, default=128, help="codes z ~ N(0, I) (default 128, seed --seed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=40, help="the consistency loss's grid (default 40)")
    parser.add_argument("--threshold", type=float, default=0.02, help="count points of persistence above this")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: print only)")
    args = parser.parse_args(argv)
    cpu_threads(1)
    categories = args.categories or sorted(p.parent.name for p in args.run.glob("*/split.json"))
    rows = []
    for category in categories:
        for path in sorted((args.run / category / "train").glob("*/model.pt")):
            method = path.parent.name
            final = load_model(path, "cpu")
            if final.generators is None or (args.methods and method not in args.methods):
                continue
            tau = float(load_checkpoint(path)["tau"])
            z = sample_latents(args.codes, final.latent_size, args.seed)
            for moment, model in (("start of stage 2", start_of_stage2(path.parent, method)),
                                  ("end of stage 2", final)):
                if model is None:
                    continue
                counts = per_shape(model, z, args.resolution, tau, args.threshold)
                rows.append({"category": category, "method": method, "moment": moment, **counts})
                listed = ", ".join(f"{k} {v:.2f}" for k, v in counts.items())
                print(f"{category:8s} {method:18s} {moment:17s} {listed}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "codes": args.codes, "seed": args.seed,
                                        "resolution": args.resolution, "threshold": args.threshold, "rows": rows},
                                       indent=1))


if __name__ == "__main__":
    main()

"""Float32 denormals on the CPU: the decoder's softplus (beta 100) and a training step of config.yaml's decoder, with
denormals kept (torch's default) against flushed to zero (``toposdf.checkpoints.cpu_threads``, what every job does).

softplus(x; beta) = log(1 + exp(beta x)) / beta makes numbers below float32's smallest normal (1.2e-38) wherever
beta x is below about -87, i.e. x below -0.87 at beta 100, and x86 CPUs compute with such numbers in slow
microcode. A trained SDF network has many pre-activations there (its units are off over most of space), so the
slowdown grows as training goes on.

Cases: softplus alone on N(0, sigma) inputs for sigma = 0.01 ... 1 (forward, and forward with backward), and one
stage-1 step of the decoder (forward, the eikonal term's gradient in x with ``create_graph``, backward) on 64 shapes
x 128 points uniform in the box, at geometric initialization and, with ``--checkpoint``, at a trained stage-1
``implicit.pt`` or ``model.pt``. Checks (the script fails otherwise): the decoder's outputs are the same to the last
bit both ways and its gradients differ by less than 1e-30 (a gradient that small can move by an ulp; the JSON says
whether all were bit-identical); softplus alone differs only below 1.2e-38.

    python benchmarks/bench_denormals.py --checkpoint results/synthetic/chair/train/deepsdf_vad/model.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from _common import table, timeit, write
from toposdf.checkpoints import build_decoder_and_codes, load_checkpoint
from toposdf.config import Config, read_config_files
from toposdf.losses import spatial_gradient

ROOT = Path(__file__).resolve().parents[1]
SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def softplus_cases(beta: float, repeats: int) -> list[dict]:
    rows = []
    generator = torch.Generator().manual_seed(0)
    for sigma in (0.01, 0.1, 0.3, 1.0):
        x = (torch.randn(8192, 128, generator=generator) * sigma).requires_grad_()
        row = {"case": f"softplus, x ~ N(0, {sigma}^2)", "elements": x.numel(),
               "denormal_share": float((torch.nn.functional.softplus(x.detach(), beta=beta).abs()
                                        < SMALLEST_NORMAL).float().mean())}
        outputs = {}
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            key = "flushed" if flush else "kept"
            row[f"{key}_forward_s"] = timeit(lambda: torch.nn.functional.softplus(x, beta=beta), repeats)["median_s"]
            row[f"{key}_backward_s"] = timeit(
                lambda: torch.nn.functional.softplus(x, beta=beta).sum().backward(), repeats)["median_s"]
            outputs[flush] = torch.nn.functional.softplus(x.detach(), beta=beta)
        torch.set_flush_denormal(False)
        assert float((outputs[False] - outputs[True]).abs().max()) < SMALLEST_NORMAL, "flushing changed a normal value"
        rows.append(row)
    return rows


def decoder_step(decoder, codes: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One stage-1 step's differentiable part: the SDF at ``points`` of each code, the eikonal term on them, and the
    gradients of their sum in every parameter."""
    decoder.zero_grad(set_to_none=True)
    x = points.clone().requires_grad_()
    sdf = decoder(codes, x)
    grad = spatial_gradient(sdf, x)
    loss = sdf.abs().mean() + ((grad.norm(dim=-1) - 1) ** 2).mean()
    loss.backward()
    return sdf.detach(), [p.grad.clone() for p in decoder.parameters()]


def decoder_case(name: str, decoder, codes: torch.Tensor, repeats: int) -> dict:
    generator = torch.Generator().manual_seed(1)
    points = torch.rand(len(codes), 128, 3, generator=generator) * 2 - 1
    row, results = {"case": name, "elements": None}, {}
    for flush in (False, True):
        torch.set_flush_denormal(flush)
        key = "flushed" if flush else "kept"
        row[f"{key}_backward_s"] = timeit(lambda: decoder_step(decoder, codes, points), repeats)["median_s"]
        results[flush] = decoder_step(decoder, codes, points)
    torch.set_flush_denormal(False)
    (kept, kept_grads), (flushed, flushed_grads) = results[False], results[True]
    row["bit_identical"] = torch.equal(kept, flushed) and all(map(torch.equal, kept_grads, flushed_grads))
    row["max_difference"] = max(float((a - b).abs().max()) for a, b in zip([kept, *kept_grads],
                                                                           [flushed, *flushed_grads]))
    assert torch.equal(kept, flushed) and row["max_difference"] < 1e-30, \
        f"{name}: flushing denormals changed the decoder's output or a gradient above 1e-30"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained implicit.pt or model.pt")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    torch.set_num_threads(1)  # one job's thread, as the workflow runs them; the flush mode is set per case
    cfg = Config.from_dict(read_config_files(ROOT / "config.yaml"))
    rows = softplus_cases(cfg.model.softplus_beta, repeats)
    torch.manual_seed(0)
    decoder, codes = build_decoder_and_codes(cfg.model, cfg.latent, None, 64)
    rows.append(decoder_case("decoder step, geometric init", decoder, codes.mu.detach(), repeats))
    if args.checkpoint is not None:
        state = load_checkpoint(args.checkpoint)
        n = len(state["codes"]["mu"])
        decoder, codes = build_decoder_and_codes(state["model"], state["latent"], state, n)
        rows.append(decoder_case(f"decoder step, trained ({args.checkpoint.name})", decoder, codes.mu.detach()[:64], repeats))
    for row in rows:
        for part in ("forward", "backward"):
            if f"kept_{part}_s" in row:
                row[f"{part}_speedup"] = row[f"kept_{part}_s"] / row[f"flushed_{part}_s"]
    table([[r["case"], f"{r.get('kept_forward_s', float('nan')) * 1e3:.1f}",
             f"{r.get('flushed_forward_s', float('nan')) * 1e3:.1f}", f"{r['kept_backward_s'] * 1e3:.1f}",
             f"{r['flushed_backward_s'] * 1e3:.1f}", f"{r['backward_speedup']:.2f}x"] for r in rows],
          ["case", "fwd kept ms", "fwd flushed ms", "fwd+bwd kept ms", "fwd+bwd flushed ms", "fwd+bwd speed-up"])
    write("denormals", {"parameters": {"repeats": repeats, "softplus_beta": cfg.model.softplus_beta,
                                       "checkpoint": str(args.checkpoint) if args.checkpoint else None},
                        "rows": rows, "target": None}, args.out, args.quick)


if __name__ == "__main__":
    main()

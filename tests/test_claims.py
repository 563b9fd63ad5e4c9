"""toposdf.claims: each check reads the right numbers and fails where it should."""

from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from toposdf.claims import _ablation_references, check_claims
from toposdf.config import load_config_file

ROOT = Path(__file__).resolve().parents[1]
CFG = load_config_file(ROOT / "config.yaml")
METHODS = {m: asdict(block) for m, block in CFG.methods.items()}


def _long(values: dict[str, dict[str, tuple[float, float]]]) -> pd.DataFrame:
    """method -> metric -> (mean, std), as toposdf.tables.collect returns it, for the chairs."""
    rows = [{"category": "chair", "method": m, "metric": k, "mean": mu, "std": sd, "n": 10}
            for m, metrics in values.items() for k, (mu, sd) in metrics.items()]
    return pd.DataFrame(rows, columns=["category", "method", "metric", "mean", "std", "n"])


def _fit(method: str, iou: float, **extra) -> dict:
    return {"method": method, "decoded_iou": iou, "nearest_other_iou": 0.65, "retrieval": 1.0,
            "retrieval_no_twin": 1.0, "shapes_no_twin": 62, "training_shapes": 64, "volume_ratio": 1.05,
            "latent_aggregate_std": 1.0, "test_decoded_iou": 0.6, **extra}


def _run(values, fits=(), fig3=None, cd=None):
    cd = pd.DataFrame(cd or [], columns=["category", "method", "baseline", "mean", "low", "high", "n", "resolved"])
    return check_claims(_long(values), cd, {"chair": {"rows": list(fits)}}, {"chair": fig3} if fig3 else {},
                        METHODS, ["chair"], 1000, 1000).set_index(["check", "method"])


def test_the_ablations_are_compared_with_the_full_method_of_their_geometry():
    assert _ablation_references(METHODS) == {"no_pd_smoothness": "ours_deepsdf_se", "no_pd_training": "ours_deepsdf_se"}


def test_pd_lap_holds_only_with_the_intervals_apart_and_the_gap_is_read_against_the_floor():
    base = {"pd_lap": (0.012, 0.0005), "pd_lap_h0": (0.002, 0), "pd_lap_h1": (0.010, 0)}
    values = {"deepsdf_vad": base, "deepsdf_se_vad": base, "heldout_training": {"pd_lap": (0.006, 0.001)},
              "ours_deepsdf": {"pd_lap": (0.009, 0.0005), "pd_lap_h0": (0.0005, 0), "pd_lap_h1": (0.0101, 0)},
              "ours_deepsdf_se": {"pd_lap": (0.0112, 0.0005), "pd_lap_h0": (0.001, 0), "pd_lap_h1": (0.009, 0)},
              "no_pd_smoothness": {"pd_lap": (0.0111, 0.0005)}, "no_pd_training": {"pd_lap": (0.03, 0.0)}}
    out = _run(values)
    assert out.loc[("pd_lap", "ours_deepsdf"), "holds"]
    assert out.loc[("gap_closed", "ours_deepsdf"), "value"] == pytest.approx(0.5)
    assert out.loc[("gap_closed", "ours_deepsdf"), "holds"]
    # 11.2 ± 0.5 against 12.0 ± 0.5: in order, but the intervals overlap by 0.2
    se = out.loc[("pd_lap", "ours_deepsdf_se")]
    assert not se["holds"] and "overlapping by 0.20" in se["detail"]
    assert not out.loc[("gap_closed", "ours_deepsdf_se"), "holds"]
    assert out.loc[("pd_lap_h0", "ours_deepsdf"), "holds"] and not out.loc[("pd_lap_h1", "ours_deepsdf"), "holds"]
    assert out.loc[("pd_lap_h1", "ours_deepsdf_se"), "holds"]
    # the ablations: No PD Smoothness is better than the full method here (the check fails), No PD Training worse
    assert not out.loc[("ablation", "no_pd_smoothness"), "holds"]
    assert out.loc[("ablation", "no_pd_training"), "holds"]
    # an ablation is not compared with the baseline
    assert ("pd_lap", "no_pd_smoothness") not in out.index


def test_fit_checks_read_training_fit_and_allow_ours_three_hundredths_below_its_baseline():
    fits = [_fit("deepsdf_vad", 0.86), _fit("deepsdf_se_vad", 0.86, nearest_other_iou=0.9, volume_ratio=1.12,
                                             retrieval_no_twin=0.9),
            _fit("ours_deepsdf", 0.831), _fit("ours_deepsdf_se", 0.829, latent_aggregate_std=1.3)]
    out = _run({}, fits=fits)
    assert out.loc[("fit_iou", "deepsdf_vad"), "holds"]
    assert not out.loc[("fit_iou", "deepsdf_se_vad"), "holds"]  # a neighbour decodes better than its own code
    assert not out.loc[("fit_volume", "deepsdf_se_vad"), "holds"]
    assert not out.loc[("fit_retrieval", "deepsdf_se_vad"), "holds"]
    assert out.loc[("fit_kept", "ours_deepsdf"), "holds"]  # -0.029
    assert not out.loc[("fit_kept", "ours_deepsdf_se"), "holds"]  # -0.031
    assert not out.loc[("prior_std", "ours_deepsdf_se"), "holds"] and out.loc[("prior_std", "ours_deepsdf"), "holds"]


def test_fig3_cd_and_sample_checks():
    values = {"heldout_training": {"blob_fraction": (0.30, 0), "cov_cd": (0.58, 0), "1_nna_cd": (0.5, 0)},
              "deepsdf_vad": {"blob_fraction": (0.41, 0), "cov_cd": (0.44, 0), "1_nna_cd": (0.69, 0)},
              "ours_deepsdf": {"blob_fraction": (0.39, 0), "cov_cd": (0.42, 0), "1_nna_cd": (0.71, 0)}}
    cd = [{"category": "chair", "method": "ours_deepsdf", "baseline": "deepsdf_vad", "mean": 0.001, "low": 0.0004,
           "high": 0.0015, "n": 32, "resolved": 1.0},
          {"category": "chair", "method": "ours_deepsdf_se", "baseline": "deepsdf_se_vad", "mean": 0.0002,
           "low": -0.0003, "high": 0.0006, "n": 32, "resolved": 0.0}]
    fig3 = {"method": "ours_deepsdf_se", "pd_lap_training_vs_pd_generator": 0.004,
            "pd_lap_training_vs_synthetic": 0.007}
    out = _run(values, fig3=fig3, cd=cd)
    assert not out.loc[("cd_mean", "ours_deepsdf"), "holds"]  # resolved worse
    assert out.loc[("cd_mean", "ours_deepsdf_se"), "holds"]  # the interval reaches 0
    assert out.loc[("fig3", "ours_deepsdf_se"), "holds"]
    assert not out.loc[("blobs", "deepsdf_vad"), "holds"] and out.loc[("blobs", "ours_deepsdf"), "holds"]
    assert out.loc[("cov_cd", "deepsdf_vad"), "holds"] and not out.loc[("cov_cd", "ours_deepsdf"), "holds"]
    assert out.loc[("nna_cd", "deepsdf_vad"), "holds"] and not out.loc[("nna_cd", "ours_deepsdf"), "holds"]


def test_the_vecset_row_is_checked_against_each_full_method_as_sec_6_2_says_and_only_where_it_ran():
    """Sec. 6.2: 3DShape2VecSet as good as ours on CD-mean (its paired interval against ours reaches 0), worse on
    PD-LAP (apart); its samples take the blob check too. Without the row, none of these rows exist."""
    values = {"vecset": {"pd_lap": (0.012, 0.001), "blob_fraction": (0.5, 0), "cov_cd": (0.5, 0), "1_nna_cd": (0.6, 0)},
              "ours_deepsdf": {"pd_lap": (0.009, 0.001)}, "ours_deepsdf_se": {"pd_lap": (0.0115, 0.001)},
              "heldout_training": {"blob_fraction": (0.3, 0), "cov_cd": (0.58, 0), "1_nna_cd": (0.5, 0)}}
    cd = [{"category": "chair", "method": "vecset", "baseline": "ours_deepsdf", "mean": -0.001, "low": -0.002,
           "high": 0.0, "n": 32, "resolved": 0.0},
          {"category": "chair", "method": "vecset", "baseline": "ours_deepsdf_se", "mean": 0.001, "low": 0.0005,
           "high": 0.0015, "n": 32, "resolved": 1.0}]
    out = _run(values, cd=cd).reset_index().set_index(["check", "method", "against"])
    assert out.loc[("vecset_cd", "vecset", "ours_deepsdf"), "holds"]
    assert not out.loc[("vecset_cd", "vecset", "ours_deepsdf_se"), "holds"]  # resolved worse than ours-SE
    assert out.loc[("vecset_pd_lap", "vecset", "ours_deepsdf"), "holds"]  # 12.0 ± 1.0 against 9.0 ± 1.0
    assert not out.loc[("vecset_pd_lap", "vecset", "ours_deepsdf_se"), "holds"]  # 12.0 ± 1.0 against 11.5 ± 1.0
    assert "(overlapping)" in out.loc[("vecset_pd_lap", "vecset", "ours_deepsdf_se"), "detail"]
    assert not out.loc[("blobs", "vecset", "heldout_training"), "holds"]  # 50% against 30%
    # no ablation or baseline is compared with the row
    assert set(out.xs("vecset_pd_lap", level="check").index.get_level_values("against")) == {"ours_deepsdf",
                                                                                          "ours_deepsdf_se"}
    without = _run({m: v for m, v in values.items() if m != "vecset"}, cd=[]).reset_index()
    assert not without["check"].str.startswith("vecset").any() and "vecset" not in set(without["method"])


def test_a_missing_number_is_not_a_failed_claim_and_rows_not_in_the_paper_are_counted_apart():
    """One test shape gives a NaN paired difference: its check is n/a, not **no**. A row added to the config (and a
    check against it) goes to its own section of claims.md, so that the header counts the paper's checks only."""
    from toposdf.claims import claims_markdown

    base = {"pd_lap": (0.012, 0.0005), "pd_lap_h0": (0.002, 0), "pd_lap_h1": (0.010, 0)}
    ours = {"pd_lap": (0.009, 0.0005), "pd_lap_h0": (0.0005, 0), "pd_lap_h1": (0.009, 0)}
    values = {"deepsdf_vad": base, "deepsdf_se_vad": base, "ours_deepsdf": ours, "ours_deepsdf_se": ours,
              "my_ours": ours, "heldout_training": {"pd_lap": (0.006, 0.001)}}
    nan = float("nan")
    cd = [["chair", "ours_deepsdf", "deepsdf_vad", nan, nan, nan, 1, False]]
    methods = {m: b for m, b in METHODS.items() if m in values} | {"my_ours": METHODS["ours_deepsdf"]}
    frame = check_claims(_long(values), pd.DataFrame(cd, columns=["category", "method", "baseline", "mean", "low",
                                                                  "high", "n", "resolved"]),
                         {}, {}, methods, ["chair"], 1000, 1000)
    out = frame.set_index(["check", "method"])
    assert out.loc[("cd_mean", "ours_deepsdf"), "holds"] is None
    assert out.loc[("pd_lap", "my_ours"), "holds"] and out.loc[("pd_lap", "my_ours"), "against"] == "deepsdf_vad"
    text = claims_markdown(frame, 1000, 1000)
    paper = frame[frame["method"] != "my_ours"]
    held, unresolved = int(paper["holds"].eq(True).sum()), int(paper["holds"].isna().sum())
    assert unresolved == 13  # the CD pair and the 12 sample checks: no generation metrics were given
    assert f"### chair: {held} of {len(paper)} checks hold ({unresolved} n/a: a number missing)" in text
    extra = frame[frame["method"] == "my_ours"]
    assert f"#### chair, rows that are not the paper's: 4 of {len(extra)} checks hold (3 n/a" in text
    assert "| n/a | CD(method) - CD(baseline) +nan" in text and "**no** | CD(method)" not in text


def test_a_second_baseline_of_a_geometry_does_not_take_the_papers_pairs():
    from toposdf.tables import paired_baselines

    methods = {"my_vad": {"geometry": "eikonal", "topology": "none"}} | METHODS  # listed first, as an overlay is
    assert paired_baselines(methods)["ours_deepsdf"] == "deepsdf_vad"
    alone = {"my_vad": {"geometry": "eikonal", "topology": "none"}, "my_vad2": {"geometry": "eikonal"},
             "mine": {"geometry": "eikonal", "topology": "learned"}}
    assert paired_baselines(alone) == {"mine": "my_vad"}


def test_the_ablations_keep_the_papers_full_method_when_a_row_of_ones_own_shares_its_geometry():
    mine = {"ours_con05": METHODS["ours_deepsdf_se"] | {"lambda_con": 0.5}}  # listed first, as an overlay's rows are
    assert _ablation_references(mine | METHODS) == {"no_pd_smoothness": "ours_deepsdf_se",
                                                    "no_pd_training": "ours_deepsdf_se"}
    alone = {m: b for m, b in METHODS.items() if m != "ours_deepsdf_se"}
    assert _ablation_references(mine | alone)["no_pd_smoothness"] == "ours_con05"

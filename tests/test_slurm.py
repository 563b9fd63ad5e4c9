"""The tiny preset's GPU rule through profiles/slurm, on a real one-node SLURM (tools/local_slurm.sh).

Preprocessing runs locally, as the README's "Running on a cluster" section suggests; only stage 1 of one category goes to SLURM, so
this costs about a minute and a half (plus the install of SLURM the first time). Skips where SLURM cannot be had (not root, no apt-get, the install fails) and
where TOPOSDF_SKIP_SLURM=1.
"""

import os
import re
import shlex
import subprocess

import pytest
from test_workflow import ROOT, SNAKEMAKE, _copy_workflow

LOCAL_SLURM = ROOT / "tools" / "local_slurm.sh"
UNAVAILABLE = 3  # local_slurm.sh's exit status for "SLURM cannot be had here"
PREPROCESSED = ["results/tiny/chair/split.json", "results/tiny/chair/sdf/0.npz", "results/tiny/chair/sdf/1.npz"]
CHECKPOINT = "results/tiny/chair/train/stage1/eikonal/implicit.pt"
DAEMONS = ["munged", "slurmctld", "slurmd"]

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]


def _local_slurm(command: str, folder, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(LOCAL_SLURM), command, str(folder)], capture_output=True, text=True,
                          timeout=timeout)


def _cluster_env(folder) -> dict:
    """The environment of a shell after `eval "$(tools/local_slurm.sh env FOLDER)"`, as a user would set it."""
    script = f'eval "$(bash {shlex.quote(str(LOCAL_SLURM))} env {shlex.quote(str(folder))})" && env -0'
    dump = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return dict(item.split("=", 1) for item in dump.stdout.split("\0") if item)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running one-node cluster, stopped afterwards; yields the environment that points at it."""
    if os.environ.get("TOPOSDF_SKIP_SLURM") == "1":
        pytest.skip("TOPOSDF_SKIP_SLURM=1")
    folder = tmp_path_factory.mktemp("slurm")
    try:
        # The first run on a fresh machine installs Debian's packages: minutes, not seconds.
        start = _local_slurm("start", folder, timeout=900)
        if start.returncode == UNAVAILABLE:
            pytest.skip(start.stderr.strip().splitlines()[-1])
        assert start.returncode == 0, start.stderr
        pids = {daemon: int((folder / f"{daemon}.pid").read_text()) for daemon in DAEMONS}
        yield _cluster_env(folder)
    finally:
        stop = _local_slurm("stop", folder)
    assert stop.returncode == 0, stop.stderr
    assert not [daemon for daemon, pid in pids.items() if _alive(pid)], "daemons left running after stop"


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory):
    """A copy of the workflow with the chairs' split and SDF samples made locally (6 short jobs)."""
    workdir = _copy_workflow(tmp_path_factory.mktemp("tiny_slurm"))
    # --configfile takes several values, so it comes after the targets.
    run = subprocess.run(SNAKEMAKE + [*PREPROCESSED, "--cores", "2", "--max-threads", "1",
                                      "--configfile", "presets/tiny.yaml"],
                         cwd=workdir, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir


def _run_through_slurm(workdir, env: dict) -> subprocess.CompletedProcess:
    command = [
        # SIGINT, not the default TERM: Snakemake then cancels its SLURM jobs before it exits.
        "timeout", "-s", "INT", "300", *SNAKEMAKE, CHECKPOINT, "--profile", str(ROOT / "profiles" / "slurm"),
        # The first status check after 2 s instead of 40; MinJobAge (600 s) stays above 3 x this, as the
        # plugin's squeue status checks need.
        "--slurm-init-seconds-before-status-checks", "2",
        "--configfile", "presets/tiny.yaml",
        "--config", "device=auto",  # the profile's device=cuda, but this SLURM node has no GPU
    ]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=330)


def _slurm_job(run: subprocess.CompletedProcess, env: dict) -> dict:
    """`scontrol --details show job` of the one SLURM job that Snakemake's run submitted, as key: value."""
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", run.stderr)
    assert len(submitted) == 1, submitted
    shown = subprocess.run(["scontrol", "--details", "--oneliner", "show", "job", submitted[0]], env=env,
                           capture_output=True, text=True, check=True)
    return dict(field.split("=", 1) for field in shown.stdout.split() if "=" in field)


def test_gpu_rule_runs_as_a_slurm_job_with_a_gpu(slurm, preprocessed):
    # The profile's cluster settings come from the environment, the caller's cleared: the node's partition
    # "gpu" (not the default, "debug") and GPU model "fake" prove that they reach sbatch.
    env = {**slurm, "TOPOSDF_GPU_PARTITION": "gpu", "TOPOSDF_GPU_MODEL": "fake", "TOPOSDF_SLURM_PARTITION": "",
           "TOPOSDF_SLURM_ACCOUNT": ""}
    run = _run_through_slurm(preprocessed, env)
    assert run.returncode == 0, run.stderr[-5000:]
    assert (preprocessed / CHECKPOINT).stat().st_size > 0

    job = _slurm_job(run, env)
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0"
    assert job["Comment"] == "rule_pretrain_implicit_wildcards_tiny_chair_eikonal"
    assert job["Partition"] == "gpu"
    # Requested (--gpus=fake:1, from gpu=1 and the GPU model) and allocated: SLURM gave the job the node's GPU.
    assert job["TresPerJob"] == "gres:gpu:fake:1"
    assert job["JOB_GRES"] == "gpu:fake:1"
    # The profile's set-threads reached SLURM as the job's CPUs.
    assert job["NumCPUs"] == "4"

"""The conda environments of the rules pin the same versions as pyproject.toml."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pins = {}
    for dep in deps:
        name, sep, version = dep.partition("==")
        assert sep, f"pyproject.toml: {dep!r} is not pinned with =="
        pins[name.lower()] = version
    return pins


def _env_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for entry in entries:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(==|=)?\s*([^\s]*)", entry)
            assert m, f"{path.name}: cannot read {entry!r}"
            pins[m.group(1).lower()] = m.group(3)
    return pins


def test_there_is_an_env_per_rule_group():
    assert {p.stem for p in ENVS} >= {"data", "topology", "plot"}


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(env):
    project = _pyproject_pins()
    pins = _env_pins(env)
    python = pins.pop("python")
    pins.pop("pip")
    assert python == "3.11"
    for name, version in pins.items():
        assert name in project, f"{env.name}: {name} is not a dependency in pyproject.toml"
        assert version == project[name], f"{env.name}: {name}=={version}, pyproject.toml pins {project[name]}"


def test_every_rule_names_an_existing_env():
    for smk in (ROOT / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env} does not exist"


def _scripts_by_env() -> dict[Path, list[tuple[str, Path]]]:
    """Every conda env of rules/*.smk with the (rule, script) pairs that run in it."""
    by_env: dict[Path, list[tuple[str, Path]]] = {}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", smk.read_text(), re.S | re.M):
            env, script = re.search(r'conda:\s*\n\s*"([^"]+)"', body), re.search(r'script:\s*\n\s*"([^"]+)"', body)
            if env and script:
                by_env.setdefault((smk.parent / env.group(1)).resolve(), []).append(
                    (name, (smk.parent / script.group(1)).resolve()))
    return by_env


@pytest.mark.parametrize("env,scripts", sorted(_scripts_by_env().items()), ids=lambda v: getattr(v, "name", ""))
def test_every_script_imports_in_its_rules_env(env, scripts):
    """A script's toposdf imports need nothing its rule's conda env lacks: torch above all, which only the
    training and evaluation envs carry (checked by blocking the big packages the env does not list)."""
    packages = set(_env_pins(env))
    blocked = [name for name in ("torch", "gudhi", "matplotlib", "pandas", "skimage")
               if {"skimage": "scikit-image"}.get(name, name) not in packages]
    code = ["import sys, traceback", *(f"sys.modules[{name!r}] = None" for name in blocked)]
    for rule, script in scripts:
        imports = [line for line in script.read_text().splitlines() if line.startswith(("from toposdf", "import toposdf"))]
        code += ["try:", *(f"    {line}" for line in imports), "except ImportError:",
                 f"    print({rule!r}, traceback.format_exc(limit=-3))"]
    run = subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0 and not run.stdout, f"{env.name} has no {blocked}:\n{run.stdout[-3000:]}{run.stderr[-2000:]}"


def test_every_gpu_rule_goes_to_the_gpu_partition_of_the_slurm_profile():
    """A rule with ``resources: gpu=1`` that the SLURM profile does not list would ask for a GPU on the default
    (CPU) partition; the profile's training rules (checkpointed trainers) also get the early SIGTERM."""
    gpu_rules = set()
    for path in (ROOT / "rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", path.read_text(), flags=re.S | re.M):
            if re.search(r"\bgpu=1\b", body):
                gpu_rules.add(name)
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())["set-resources"]
    assert {"pretrain_implicit", "joint_train", "vecset_autoencoder"} <= gpu_rules
    on_gpu = {rule for rule, entry in profile.items() if entry.get("slurm_partition") == "?gpu_partition"}
    assert gpu_rules == on_gpu, (sorted(gpu_rules - on_gpu), sorted(on_gpu - gpu_rules))
    for rule in ("pretrain_implicit", "pretrain_pdgen", "joint_train", "vecset_autoencoder", "vecset_diffusion"):
        assert "--signal=TERM@300" in profile[rule]["slurm_extra"], rule

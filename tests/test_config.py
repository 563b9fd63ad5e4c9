"""Config validation: defaults, the shipped configs, and errors that name the key."""

from pathlib import Path

import pytest
import yaml

from toposdf.config import Config, ConfigError, load_config_file, merge_configs, read_config_files, validate_config

ROOT = Path(__file__).resolve().parents[1]


def _default() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _merged(preset: str) -> dict:
    """config.yaml with a preset on top, as ``--configfile config.yaml presets/<preset>`` gives it."""
    return read_config_files(ROOT / "config.yaml", ROOT / "presets" / preset)


def test_config_files_merge_as_snakemake_merges_them(tmp_path):
    base = {"train": {"seed": 0, "implicit": {"epochs": 110, "lr_codes": 0.005}}, "dataset": {"categories": ["a", "b"]}}
    overlay = {"train": {"implicit": {"epochs": 125}}, "dataset": {"categories": ["c"]}, "new": 1}
    merged = merge_configs(base, overlay)
    assert merged == {"train": {"seed": 0, "implicit": {"epochs": 125, "lr_codes": 0.005}},
                      "dataset": {"categories": ["c"]}, "new": 1}  # nested keys kept, lists replaced
    assert base["train"]["implicit"]["epochs"] == 110 and overlay == {"train": {"implicit": {"epochs": 125}},
                                                                       "dataset": {"categories": ["c"]}, "new": 1}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(overlay))
    (tmp_path / "empty.yaml").write_text("")
    assert read_config_files(tmp_path / "a.yaml", tmp_path / "empty.yaml", tmp_path / "b.yaml") == merged
    cpu_long = load_config_file(ROOT / "config.yaml", ROOT / "presets" / "cpu_long.yaml")
    assert cpu_long.train.implicit.regularizer_shapes == 4 and cpu_long.dataset.categories == ("chair", "table", "sofa")
    assert cpu_long.train.implicit.epochs == _default()["train"]["implicit"]["epochs"]  # every code: as many updates
    raw_long = read_config_files(ROOT / "config.yaml", ROOT / "presets" / "cpu_long.yaml")
    for section, key in (("train", "joint"), ("evaluation", "reconstruct")):  # the larger run cuts neither
        for name, value in _default()[section][key].items():
            if name != "rounds":  # 30 rounds of 16 steps here, 40 of 8 in the default
                assert raw_long[section][key][name] == value, f"cpu_long's {section}.{key}.{name} is below the default"
    for row in ("ours_deepsdf", "ours_deepsdf_se", "no_pd_smoothness", "no_pd_training"):  # config.yaml's weights
        assert raw_long["methods"][row] == _default()["methods"][row], f"cpu_long's {row} differs from config.yaml's"


def test_default_config_is_valid_and_typed():
    cfg = load_config_file(ROOT / "config.yaml")
    assert cfg.dataset.kind == "synthetic" and cfg.dataset.categories == ("chair", "table")
    assert cfg.persistence.tau > 0 and cfg.shards >= 1 and cfg.grid.resolution >= 8


def test_the_schemas_default_rows_are_config_yamls():
    """A config that names no methods gets config.yaml's rows of Table 1, every weight as config.yaml sets it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    without_rows = {key: value for key, value in config.items() if key != "methods"}
    assert validate_config(without_rows)["methods"] == validate_config(config)["methods"]


def test_tiny_preset_is_valid():
    cfg = Config.from_dict(_merged("tiny.yaml"))
    assert cfg.dataset.name == "tiny" and cfg.dataset.shapes_per_category <= 10


def test_gpu_reference_preset_is_valid_and_full_sized():
    cfg = Config.from_dict(_merged("gpu_reference.yaml"))
    assert (cfg.model.hidden, cfg.model.n_layers, cfg.model.latent_size) == (512, 8, 32)
    assert cfg.grid.resolution == 64 and cfg.dataset.categories == ("chair", "table")
    n = cfg.dataset.shapes_per_category
    assert n - round(n * cfg.dataset.test_fraction) >= 300  # the GPU benchmark's size: at least 300 training chairs


def test_shapenet_preset_needs_a_root(tmp_path):
    with pytest.raises(ConfigError, match="dataset.root"):
        validate_config(_merged("shapenet.yaml"))
    raw = _merged("shapenet.yaml")
    raw["dataset"]["root"] = str(tmp_path)
    with pytest.raises(ConfigError, match=r"has no folder for chair \(03001627/\), table \(04379243/\), sofa"):
        validate_config(raw)  # an empty folder: not ShapeNetCore.v2
    for synset in ("03001627", "04379243", "04256520"):
        (tmp_path / synset).mkdir()
    assert Config.from_dict(raw).grid.resolution == 64


def test_a_shapenet_root_needs_kind_shapenet_and_its_own_results_folder(tmp_path):
    """Two silent traps of a ShapeNet run on top of config.yaml: a root with kind synthetic (the shipped shapes would
    be used) and kind shapenet under config.yaml's name (results/synthetic/ would be overwritten)."""
    raw = _default()
    raw["dataset"] = raw["dataset"] | {"root": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"dataset\.root: .* read only when dataset\.kind is 'shapenet'"):
        validate_config(raw)
    raw["dataset"]["kind"] = "shapenet"
    with pytest.raises(ConfigError, match=r"dataset\.name: 'synthetic' is the shipped synthetic dataset's"):
        validate_config(raw)
    raw["dataset"]["name"] = "shapenet"
    (tmp_path / "03001627").mkdir()
    (tmp_path / "04379243").mkdir()
    assert validate_config(raw)["dataset"]["name"] == "shapenet"


def test_a_home_relative_path_is_expanded_where_the_config_is_read(tmp_path, monkeypatch):
    """The jobs open the paths as given: a ``~`` left in them names a folder that does not exist (and an external
    row whose outputs exist would not say so)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for synset in ("03001627", "04379243"):
        (tmp_path / "sn" / synset).mkdir(parents=True)
    (tmp_path / "gen" / "chair").mkdir(parents=True)
    raw = _default()
    raw["dataset"] |= {"kind": "shapenet", "name": "sn", "root": "~/sn",
                       "splits": {"train": "~/splits/{category}_train.json", "test": "splits/{category}_test.json"}}
    raw["external"] = {"gen": {"samples": "~/gen/{category}/"}}
    raw["dataset"]["categories"] = ["chair"]
    config = validate_config(raw)
    assert config["dataset"]["root"] == str(tmp_path / "sn")
    assert config["dataset"]["splits"] == {"train": str(tmp_path / "splits" / "{category}_train.json"),
                                           "test": "splits/{category}_test.json"}  # a relative path stays as given
    assert config["external"]["gen"]["samples"] == str(tmp_path / "gen" / "{category}")
    assert raw["dataset"]["root"] == "~/sn"  # the caller's dict is left alone


@pytest.mark.parametrize("path, message", [
    ("gen/{cat}/", r"external\.gen\.samples: 'gen/\{cat\}/': unknown placeholder \{cat\}; only \{category\}"),
    ("gen/{category", r"external\.gen\.samples: 'gen/\{category': a brace; only \{category\} is replaced"),
    ("gen/{{x}}/{category}", r"unknown placeholder \{x\}; only \{category\} is replaced .* no other brace"),
    ("gen/{category!r}/", r"unknown placeholder \{category!r\}"),  # Snakemake inputs take no other brace
    ("~nosuchuser_xyz/{category}", r"external\.gen\.samples: .*cannot expand '~nosuchuser_xyz' \(no such user\)"),
])
def test_a_path_with_another_placeholder_than_category_is_named(path, message):
    raw = _default()
    raw["external"] = {"gen": {"samples": path}}
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)


def test_no_test_shapes_is_an_error_at_start_up():
    raw = _default()
    raw["dataset"]["test_fraction"] = 0
    with pytest.raises(ConfigError, match=r"dataset\.test_fraction: 0 leaves no test shapes"):
        validate_config(raw)


def test_defaults_are_filled():
    raw = {"dataset": {"kind": "synthetic", "categories": ["chair"], "shapes_per_category": 4}, "sdf": {}, "grid": {},
           "persistence": {}, "shards": 1}
    cfg = Config.from_dict(raw)
    assert cfg.dataset.name == "synthetic" and cfg.dataset.test_fraction == 0.2
    assert cfg.sdf.variances == (0.0025, 0.00025) and cfg.preview.n_shapes == 24


@pytest.mark.parametrize(
    "path,value,key",
    [
        (("dataset", "kind"), "modelnet", "dataset.kind"),
        (("dataset", "categories"), ["chair", "lamp"], "dataset.categories.1"),
        (("dataset", "test_fraction"), 1.5, "dataset.test_fraction"),
        (("grid", "resolution"), 4, "grid.resolution"),
        (("persistence", "tau"), -0.1, "persistence.tau"),
        (("persistence", "min_persistnce"), 0.1, "persistence.min_persistnce"),
        (("shards",), 0, "shards"),
        (("sdf", "n_points"), "many", "sdf.n_points"),
        (("model", "latent_size"), 0, "model.latent_size"),
        (("latent", "init_std"), 0.0, "latent.init_std"),
        (("latent", "prior"), "gaussian", "latent.prior"),
        (("latent", "prior"), "per_code", "latent.variational"),  # the per-code KL needs variational codes
        (("train", "implicit", "lambda_kl"), -0.01, "train.implicit.lambda_kl"),
        (("methods", "ours_deepsdf", "lambda_smooth"), "often", "methods.ours_deepsdf.lambda_smooth"),
        (("evaluation", "grid_resolution"), 40, "evaluation.grid_resolution"),  # one grid: grid.resolution
    ],
)
def test_invalid_values_name_the_key(path, value, key):
    raw = _default()
    node = raw
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    assert f"  {key}:" in str(info.value)


def test_numbers_given_as_strings_on_the_command_line_are_read():
    """Snakemake's --config 'model={latent_size: 32}' passes nested values as strings; the schema's numbers,
    booleans and nulls are read from them, and strings that are not one stay errors."""
    raw = _default()
    raw["model"]["latent_size"] = "32"
    raw["train"]["seed"] = "1"
    raw["persistence"]["tau"] = "0.05"
    raw["latent"]["variational"] = "false"
    raw["methods"]["ours_deepsdf"]["lambda_smooth"] = "1.5"  # a number or auto (anyOf)
    raw["methods"]["ours_deepsdf_se"]["lambda_smooth"] = "auto"
    config = validate_config(raw)
    assert config["model"]["latent_size"] == 32 and config["train"]["seed"] == 1
    assert config["persistence"]["tau"] == 0.05 and config["latent"]["variational"] is False
    assert config["methods"]["ours_deepsdf"]["lambda_smooth"] == 1.5
    assert config["methods"]["ours_deepsdf_se"]["lambda_smooth"] == "auto"
    raw["model"]["latent_size"] = "32.5"
    with pytest.raises(ConfigError, match=r"model\.latent_size: 32\.5 is not of type 'integer'"):  # the number read
        validate_config(raw)
    raw["model"]["latent_size"] = "32.0"  # JSON Schema's integer, not the jobs'
    with pytest.raises(ConfigError, match=r"model\.latent_size: 32\.0 is not of type 'integer'"):
        validate_config(raw)
    raw["model"]["latent_size"] = 32.0  # the same in a config file
    with pytest.raises(ConfigError, match=r"model\.latent_size: 32\.0 is not of type 'integer'"):
        validate_config(raw)
    raw["model"]["latent_size"] = "true"  # a boolean is not an integer
    with pytest.raises(ConfigError, match="model.latent_size"):
        validate_config(raw)
    raw["model"]["latent_size"] = "32"
    raw["methods"]["ours_deepsdf"]["lambda_smooth"] = "often"
    with pytest.raises(ConfigError, match="lambda_smooth"):
        validate_config(raw)


def test_missing_section_is_named():
    raw = _default()
    del raw["persistence"]
    with pytest.raises(ConfigError, match="persistence"):
        validate_config(raw)


# --- job settings: what a rule passes through params, and the config a job builds from it --------------------

def test_settings_takes_exactly_the_dotted_entries_with_sorted_keys():
    from toposdf.stages import settings

    full = validate_config(_default())
    out = settings(full, ["persistence.tau", "methods.ours_deepsdf.lambda_con", "grid"])
    assert out == {"grid": full["grid"], "methods": {"ours_deepsdf": {"lambda_con": full["methods"]["ours_deepsdf"]["lambda_con"]}},
                   "persistence": {"tau": full["persistence"]["tau"]}}
    assert list(out) == sorted(out)
    # a reordered block is the same settings (Snakemake compares their repr)
    shuffled = dict(reversed(list(full["persistence"].items())))
    assert repr(settings({"persistence": shuffled}, ["persistence"])) == repr(settings(full, ["persistence"]))
    with pytest.raises(ConfigError, match=r"methods\.nope"):
        settings(full, ["methods.nope.lambda_con"])
    # but the methods keep the config's order: the rows of the tables and figures
    assert list(settings(full, ["methods"])["methods"]) == list(full["methods"]) != sorted(full["methods"])
    assert list(Config.from_settings(settings(full, ["methods"])).methods) == list(full["methods"])


def test_a_job_cannot_read_a_setting_its_params_leave_out():
    from toposdf.stages import settings

    full = validate_config(_default())
    cfg = Config.from_settings(settings(full, ["persistence.tau", "methods.ours_deepsdf", "train.joint.rounds"]))
    assert cfg.persistence.tau == full["persistence"]["tau"]
    assert cfg.methods["ours_deepsdf"].lambda_con == full["methods"]["ours_deepsdf"]["lambda_con"]
    assert cfg.train.joint.rounds == full["train"]["joint"]["rounds"]
    for read in (lambda: cfg.persistence.min_persistence + 0, lambda: float(cfg.persistence.min_persistence),
                 lambda: cfg.persistence.min_persistence == 0.02):
        with pytest.raises(ConfigError, match=r"persistence\.min_persistence: not in this job's settings"):
            read()
    with pytest.raises(ConfigError, match=r"train\.joint\.lr_decoder"):
        cfg.train.joint.lr_decoder
    with pytest.raises(ConfigError, match=r"^grid: not in"):
        int(cfg.grid.resolution)
    with pytest.raises(ConfigError, match=r"methods\.deepsdf_vad"):
        cfg.methods["deepsdf_vad"]
    with pytest.raises(ConfigError, match=r"^model: not in"):
        cfg.model.latent_size


def test_a_late_key_is_left_out_of_a_jobs_settings_while_null():
    """A key added to the method blocks after runs were made (toposdf.config.LATE_KEYS) is not in a job's params
    while null, so those runs are not rerun on upgrade; the job reads it as null. Set, it is in the params."""
    from toposdf.config import LATE_KEYS
    from toposdf.stages import settings

    assert "consistency_dims" in LATE_KEYS["methods.*"]
    raw = _default()
    full = validate_config(raw)
    assert full["methods"]["ours_deepsdf"]["consistency_dims"] is None  # the schema's default is there
    for keys in (["methods.ours_deepsdf"], ["methods"]):
        out = settings(full, keys)
        assert all("consistency_dims" not in block for block in out["methods"].values())
        assert Config.from_settings(out).methods["ours_deepsdf"].consistency_dims is None
    raw["methods"]["ours_deepsdf"] = raw["methods"]["ours_deepsdf"] | {"consistency_dims": [1]}
    out = settings(validate_config(raw), ["methods.ours_deepsdf"])
    assert out["methods"]["ours_deepsdf"]["consistency_dims"] == [1]
    assert Config.from_settings(out).methods["ours_deepsdf"].consistency_dims == (1,)


def test_a_late_key_of_any_block_is_left_out_while_null():
    """LATE_KEYS names blocks by path, not only the methods: ``train.joint``'s late key (``data_epochs``) is stripped
    the same way, and read back as null."""
    from toposdf.config import LATE_KEYS
    from toposdf.stages import settings

    assert "data_epochs" in LATE_KEYS["train.joint"]
    full = validate_config(_default())
    assert full["train"]["joint"]["data_epochs"] is None
    for keys in (["train.joint"], ["train"]):
        out = settings(full, keys)
        assert "data_epochs" not in out["train"]["joint"]
        assert Config.from_settings(out).train.joint.data_epochs is None


def test_an_external_entrys_skip_invalid_is_a_late_key(tmp_path):
    """``external.<name>.skip_invalid`` came after runs with external rows were made: while null it stays out of
    their jobs' params (no rerun on upgrade) and reads back as null; set, it is in them."""
    from toposdf.stages import reads, settings

    raw = _default()
    for category in raw["dataset"]["categories"]:
        (tmp_path / category).mkdir()
    samples = str(tmp_path / "{category}")
    raw["external"] = {"gen": {"samples": samples}}
    out = settings(validate_config(raw), reads("external_samples", external="gen"))
    assert out["external"] == {"gen": {"draws": None, "normalize": True, "reconstructions": None, "samples": samples}}
    assert Config.from_settings(out).external["gen"].skip_invalid is None
    raw["external"]["gen"]["skip_invalid"] = True
    assert settings(validate_config(raw), reads("external_samples", external="gen"))["external"]["gen"]["skip_invalid"]


def test_a_geometry_entrys_steik_gradient_is_a_late_key_that_reaches_stage_1():
    """``geometry.<entry>.steik_gradient`` came after the references: while null it stays out of stage 1's params (no
    rerun on upgrade) and stage 1 reads it as null (the fixed-normal form); set, it is in them and in the stage's
    settings."""
    from toposdf.stages import reads, settings
    from toposdf.training.configs import implicit_train_config

    raw = _default()
    out = settings(validate_config(raw), reads("pretrain_implicit", geometry="steik"))
    assert "steik_gradient" not in out["geometry"]["steik"]
    assert implicit_train_config(Config.from_settings(out), "steik").steik_gradient is None
    raw["geometry"]["steik"] = raw["geometry"]["steik"] | {"steik_gradient": "steik"}
    out = settings(validate_config(raw), reads("pretrain_implicit", geometry="steik"))
    assert out["geometry"]["steik"]["steik_gradient"] == "steik"
    assert implicit_train_config(Config.from_settings(out), "steik").steik_gradient == "steik"
    raw["geometry"]["steik"]["steik_gradient"] = "full"
    with pytest.raises(ConfigError, match=r"geometry\.steik\.steik_gradient"):
        validate_config(raw)


def test_row_names_and_figure_roles_that_would_mix_rows_are_refused(tmp_path):
    """A method named like a calibration row would be averaged into it in the tables; Figs. 1 and 2 compare two
    methods; one external folder without {category} would be scored as every category."""
    raw = _default()
    raw["methods"]["heldout_training"] = {"geometry": "eikonal"}
    with pytest.raises(ConfigError, match=r"methods\.heldout_training: the name is taken by a calibration row"):
        validate_config(raw)
    raw = _default()
    raw["figures"] = raw.get("figures", {}) | {"baseline": "ours_deepsdf_se", "ours": "ours_deepsdf_se"}
    with pytest.raises(ConfigError, match=r"figures\.baseline and figures\.ours: both 'ours_deepsdf_se'"):
        validate_config(raw)
    raw = _default()
    raw["external"] = {"gen": {"samples": str(tmp_path)}}
    with pytest.raises(ConfigError, match=r"external\.gen\.samples: .* has no \{category\}, so every category"):
        validate_config(raw)
    raw["dataset"]["categories"] = ["chair"]  # one category: a plain folder is that category's
    validate_config(raw)


def test_the_whole_config_builds_the_same_from_settings_of_every_key():
    from toposdf.stages import settings

    full = validate_config(_default())
    assert Config.from_settings(settings(full, list(full))) == Config.from_dict(_default())


def test_the_library_dataclasses_take_their_defaults_from_the_schema():
    """The schema is the one place a default lives: the decoder's and the codes' dataclasses read theirs from it."""
    from dataclasses import asdict

    from toposdf.models import DecoderConfig, LatentConfig

    schema = validate_config({**_default(), "model": {}, "latent": {}})
    assert asdict(LatentConfig()) == schema["latent"]
    decoder = asdict(DecoderConfig())
    assert {key: decoder[key] for key in schema["model"]} == schema["model"]


def test_every_rule_takes_its_settings_from_its_stage_declaration(tmp_path):
    """rules/*.smk pass settings("<rule>"), and toposdf/stages.py declares what each of those rules reads, with
    keys that exist in the config (a wrong key fails when the DAG is built)."""
    import re

    from toposdf.stages import settings
    from toposdf.stages import READS, reads

    rules = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for rule, body in re.findall(r"^rule (\w+):(.*?)(?=^rule |\Z)", smk.read_text(), re.S | re.M):
            rules |= {rule: stage for stage in re.findall(r'settings=settings\("(\w+)"\)', body)}
    assert all(rule == stage for rule, stage in rules.items()), rules
    assert set(rules) == set(READS)
    for category in _default()["dataset"]["categories"]:
        (tmp_path / category).mkdir()
    full = validate_config(_default() | {"external": {"gen": {"samples": str(tmp_path / "{category}")}}, "vecset": {}})
    for rule in READS:
        settings(full, reads(rule, method="ours_deepsdf", geometry="eikonal", external="gen"))


def test_a_row_set_to_null_by_an_overlay_is_removed():
    """Snakemake lays --configfile over config.yaml key by key: ``methods: {no_pd_training: null}`` there removes
    the row (and ``external: {x: null}`` an external row); every other row stays."""
    raw = _default()
    raw["methods"]["no_pd_training"] = None
    raw["external"] = {"gone": None}
    config = validate_config(raw)
    assert "no_pd_training" not in config["methods"] and "ours_deepsdf_se" in config["methods"]
    assert config["external"] is None  # as if never set: the jobs that read it keep their params
    raw = _default()
    raw["methods"]["no_pd_training"] = "null"  # --config 'methods={no_pd_training: null}' passes a string
    assert "no_pd_training" not in validate_config(raw)["methods"]


def test_a_fig2_index_beyond_the_synthetic_training_shapes_is_a_start_up_error():
    raw = _default()  # 96 shapes a category, 32 of them test: 64 training shapes
    raw["figures"] = raw.get("figures", {}) | {"interpolation_shapes": [0, 64]}
    with pytest.raises(ConfigError, match=r"figures\.interpolation_shapes: 64 is not a training shape .*indices 0-63"):
        validate_config(raw)
    raw["figures"]["interpolation_shapes"] = [0, 63]
    validate_config(raw)


def test_too_few_generated_shapes_for_the_synthetic_test_set_is_a_start_up_error():
    """The synthetic split's test count is known before any job: fewer generated shapes than test shapes fails at
    start-up (it failed in generate, after all the training)."""
    from toposdf.data import split_models
    from toposdf.layout import count_test_shapes

    for n, fraction in ((96, 0.3334), (6, 0.2), (2, 0.01), (10, 0.0), (34, 0.1)):
        assert count_test_shapes(n, fraction) == len(split_models([f"s{i}" for i in range(n)], fraction, 0)["test"])
    raw = _default()
    raw["evaluation"] = raw.get("evaluation", {}) | {"generated_shapes": 31}
    with pytest.raises(ConfigError, match=r"evaluation\.generated_shapes: 31 is fewer than the 32 test shapes"):
        validate_config(raw)
    raw["evaluation"]["generated_shapes"] = 32
    validate_config(raw)

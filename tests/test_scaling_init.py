"""scaling.train, the Python API of `scaling train`: the same run, summary and errors as the command line."""

import json
import subprocess
import sys

import pytest

import scaling
from conftest import PROJECT_ROOT, TINY
from scaling import config as config_lib
from scaling.errors import ConfigError
from scaling.io import read_jsonl
from scaling_cli.main import main

SHORT = TINY + ["train.steps=6", "train.eval_every=3"]


def sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def as_sections(overrides) -> dict:
    """The dict of sections that the `section.key=value` overrides describe."""
    sections: dict = {}
    for text in overrides:
        section, key, value = config_lib.parse_override(text)
        sections.setdefault(section, {})[key] = value
    return sections


def losses(run_dir) -> list:
    return [(r["step"], r.get("loss"), r.get("val_loss")) for r in read_jsonl(run_dir / "metrics.jsonl")]


def test_the_api_trains_the_run_the_cli_trains_and_returns_its_summary(tmp_path, capsys):
    summary = scaling.train(as_sections(SHORT), tmp_path / "api", host_devices=1)
    assert capsys.readouterr().err == ""  # quiet by default
    assert main(["train", "--out", str(tmp_path / "cli"), "--quiet", "--host-devices", "1", *sets(SHORT)]) == 0
    from_cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary == json.loads((tmp_path / "api" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert summary["run_id"] == from_cli["run_id"] and summary["final_val_loss"] == from_cli["final_val_loss"]
    assert losses(tmp_path / "api") == losses(tmp_path / "cli")


def test_a_runconfig_a_dict_and_a_toml_path_name_the_same_run(tmp_path):
    """The finished run is found, not trained again, whichever form describes it."""
    out = tmp_path / "run"
    first = scaling.train(as_sections(SHORT), out)
    logged = (out / "metrics.jsonl").read_bytes()
    config = config_lib.load(None, SHORT)
    path = tmp_path / "tiny.toml"
    path.write_text(config_lib.to_toml(config))
    assert scaling.train(config, out)["run_id"] == first["run_id"]
    assert scaling.train(str(path), out)["run_id"] == first["run_id"]
    assert (out / "metrics.jsonl").read_bytes() == logged


BAD = {  # case: (the API's config, its keywords, the CLI's extra arguments, the --set overrides)
    "negative lr": (["train.lr=-1"], {}, []),
    "host devices not dividing": (["train.batch_size=4"], {"host_devices": 3}, ["--host-devices", "3"]),
    "host devices 0": ([], {"host_devices": 0}, ["--host-devices", "0"]),
    "unknown key": (["train.speed=3"], {}, []),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_the_error_the_cli_prints_and_writes_nothing(case, tmp_path, capsys):
    overrides, keywords, flags = BAD[case]
    with pytest.raises(ConfigError) as raised:
        scaling.train(as_sections(SHORT + overrides), tmp_path / "api", **keywords)
    assert main(["train", "--out", str(tmp_path / "cli"), "--quiet", *flags, *sets(SHORT + overrides)]) == 2
    assert capsys.readouterr().err == f"error: {raised.value}\n"
    assert list(tmp_path.iterdir()) == []


def test_an_empty_out_or_a_config_of_another_type_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"the run directory \(--out\) is empty"):
        scaling.train(as_sections(SHORT), "")
    with pytest.raises(ConfigError, match="config must be a RunConfig, a dict of sections, a TOML path or None"):
        scaling.train(42, tmp_path / "run")
    with pytest.raises(ConfigError, match="config file not found"):
        scaling.train(tmp_path / "missing.toml", tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_importing_scaling_imports_neither_jax_nor_pandas():
    code = "import sys, scaling; print(sorted(m for m in ('jax', 'pandas', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

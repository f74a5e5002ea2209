import json

import numpy as np
import pytest

from conftest import TINY, run_cli
from scaling import hardware
from scaling_cli.main import main


def sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def test_train_end_to_end_in_a_fresh_process(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text("[model]\nd_model = 32\nn_layers = 1\nn_heads = 2\n\n[train]\nseq_len = 32\nbatch_size = 8\n"
                      "steps = 6\neval_every = 3\npeak_flops = 1e11\n\n[checkpoint]\nevery = 3\n")
    result = run_cli("train", "--config", str(config), "--out", str(tmp_path / "run"), "--set", "train.lr=1e-3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "completed" in result.stdout and str(tmp_path / "run") in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["train"]["lr"] == 1e-3 and summary["steps"] == 6
    assert "step 6/6" in result.stderr  # plain progress lines when not on a terminal
    # The CPUs are split into one data-parallel device each (as many as divide the batch of 8).
    assert summary["n_devices"] == hardware.host_devices_for(8, hardware.usable_cpus())


def test_host_devices_flag_sets_the_count_and_rejects_nonsense(tmp_path):
    overrides = ["--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "model.n_heads=2",
                 "--set", "train.seq_len=32", "--set", "train.batch_size=8", "--set", "train.steps=2"]
    result = run_cli("train", "--out", str(tmp_path / "one"), "--host-devices", "1", "--quiet", *overrides)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "one" / "summary.json").read_text())["n_devices"] == 1
    bad = run_cli("train", "--out", str(tmp_path / "bad"), "--host-devices", "0", *overrides)
    assert bad.returncode == 2 and "--host-devices must be at least 1" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_help_lists_commands_and_keys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--set" in out and "train.schedule" in out and "data.tokenizer" in out


def write_bin(directory, values, dtype=np.uint16):
    directory.mkdir(exist_ok=True)
    for split in ("train", "val"):
        np.asarray(values, dtype=dtype).tofile(directory / f"{split}.bin")
    return directory


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("empty", "empty"),
    ("undecodable", "UTF-8"),
    ("beyond_vocab", "not below the vocabulary size"),
    ("too_short", "seq_len"),
    ("unknown_key", "train.stpes"),
    ("wrong_type", "train.steps"),
])
def test_bad_input_gives_one_line_error_and_nonzero_exit(case, message, tmp_path, capsys):
    overrides = TINY + ["train.steps=2"]
    if case == "missing":
        overrides.append(f"data.source={tmp_path / 'nowhere'}")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        overrides.append(f"data.source={tmp_path / 'empty'}")
    elif case == "undecodable":
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        (corpus / "a.txt").write_text("fine text " * 500)
        (corpus / "b.txt").write_bytes(b"\xff\xfe\x00 not utf-8 \xc3\x28" * 100)
        overrides.append(f"data.source={corpus}")
    elif case == "beyond_vocab":
        overrides += [f"data.source={write_bin(tmp_path / 'bin', np.arange(2000) % 300)}", "model.vocab_size=256"]
    elif case == "too_short":
        overrides += [f"data.source={write_bin(tmp_path / 'bin', np.arange(20))}"]
    elif case == "unknown_key":
        overrides.append("train.stpes=3")
    elif case == "wrong_type":
        overrides.append("train.steps=many")
    code = main(["train", "--out", str(tmp_path / "run"), "--quiet", *sets(overrides)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert message in err
    assert not (tmp_path / "run" / "summary.json").exists()


def test_divergence_exits_with_code_3(tmp_path, capsys):
    overrides = TINY + ["train.steps=30", "train.lr=1e12", "train.grad_clip=1e12", "train.weight_decay=0.0"]
    code = main(["train", "--out", str(tmp_path / "run"), "--quiet", *sets(overrides)])
    assert code == 3
    assert "diverged" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().out

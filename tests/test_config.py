import dataclasses

import pytest

from scaling import config as config_lib
from scaling.config import RunConfig, Where, config_hash, from_dict, load, parse_override, read_fields, resolve, to_toml
from scaling.errors import ConfigError


def test_defaults_and_overrides():
    config = load(None, ["train.lr=1e-3", "model.mlp=swiglu", "train.fsdp=true", "data.tokenizer=bpe:512",
                         "train.steps=5"])
    assert config.train.lr == 1e-3
    assert config.model.mlp == "swiglu"
    assert config.train.fsdp is True
    assert config.data.tokenizer == "bpe:512"
    assert config.model.d_model == RunConfig().model.d_model


def test_toml_file_and_override_precedence(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nd_model = 64\nn_heads = 2\n[train]\nsteps = 7\nlr = 0.01\n")
    config = load(path, ["train.lr=0.02"])
    assert (config.model.d_model, config.model.n_heads, config.train.steps, config.train.lr) == (64, 2, 7, 0.02)


@pytest.mark.parametrize("overrides, message", [
    (["model.d_modle=3"], "model.d_modle"),
    (["modle.d_model=3"], "modle"),
    (["train.steps=1.5"], "train.steps"),
    (["train.lr=fast"], "train.lr"),
    (["model.tie_embeddings=1"], "model.tie_embeddings"),
    (["train.schedule=linear"], "train.schedule"),
    (["model.d_model=65"], "divisible"),
    (["train.steps=3", "train.tokens=100"], "not both"),
    (["data.tokenizer=bpe:abc"], "bpe"),
    (["train.batch_size=6", "train.grad_accum=4"], "grad_accum"),
    (["lr=3"], "section.key"),
    (["train.lr=nan"], "'train.lr' must be a finite number"),
    (["train.lr=inf"], "'train.lr' must be a finite number"),
    (["train.lr=0"], "'train.lr' must be positive"),
    (["train.grad_clip=-1"], "'train.grad_clip' must be >= 0"),
    (["train.beta1=1.0"], r"'train.beta1' must be in \[0, 1\)"),
    (["train.beta2=1.5"], r"'train.beta2' must be in \[0, 1\)"),
    (["train.seed=-1"], "'train.seed' must be >= 0"),
    (["train.weight_decay=-0.1"], "'train.weight_decay' must be >= 0"),
    (["train.min_lr_ratio=2"], "'train.min_lr_ratio' must be in"),
    (["train.peak_flops=0"], "'train.peak_flops' must be positive"),
])
def test_bad_keys_and_types_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load(None, overrides)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load(bad)


def test_resolve_fills_everything():
    config = resolve(load(None, ["train.tokens=10000", "train.batch_size=4", "train.seq_len=64"]), vocab_size=256)
    assert config.model.vocab_size == 256
    assert config.model.d_ff == 4 * config.model.d_model
    assert config.train.steps == 40  # ceil(10000 / 256)
    assert config.train.tokens is None
    swiglu = resolve(load(None, ["model.mlp=swiglu", "model.d_model=96", "train.steps=1"]), 256)
    assert swiglu.model.d_ff % 32 == 0 and swiglu.model.d_ff >= 8 * 96 // 3
    with pytest.raises(ConfigError, match="train.steps or train.tokens"):
        resolve(load(None), 256)
    with pytest.raises(ConfigError, match="smaller"):
        resolve(load(None, ["model.vocab_size=100", "train.steps=1"]), 256)


def test_hash_is_stable_and_sensitive():
    a = resolve(load(None, ["train.steps=10"]), 256)
    b = resolve(load(None, ["train.steps=10"]), 256)
    c = resolve(load(None, ["train.steps=11"]), 256)
    assert config_hash(a) == config_hash(b) != config_hash(c)


def test_toml_round_trip(tmp_path):
    config = resolve(load(None, ["train.steps=10", "model.mlp=swiglu", "train.peak_flops=1e12"]), 256)
    path = tmp_path / "resolved.toml"
    path.write_text(to_toml(config))
    assert load(path) == config


def test_parse_override_reads_toml_values():
    assert parse_override("train.lr=3e-4") == ("train", "lr", 3e-4)
    assert parse_override("data.source=/some/path") == ("data", "source", "/some/path")
    assert parse_override("model.d_ff=null") == ("model", "d_ff", None)


def test_from_dict_rejects_non_table_section():
    with pytest.raises(ConfigError, match="table"):
        from_dict({"model": 3})
    assert set(config_lib.SECTIONS) == {"model", "data", "train", "checkpoint", "log"}


def test_set_below_a_value_in_the_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "flat.toml"
    path.write_text("model = 3\n")
    with pytest.raises(ConfigError, match=r"--set model.d_model: 'model' is not a table in .*flat.toml"):
        load(path, ["model.d_model=64"])
    with pytest.raises(ConfigError, match="--set expects section.key=value"):
        load(None, ["train.lr"])


def test_the_tokenizer_spec_has_one_rule_for_the_config_and_the_data():
    from scaling.errors import DataError
    from scaling.tokenizer import parse_spec

    assert load(None, ["data.tokenizer=bpe:257"]).data.tokenizer == "bpe:257" and parse_spec("bpe:257") == 257
    for bad in ("bpe:256", "bpe:x", "bpe:", "word"):
        with pytest.raises(ConfigError, match="data.tokenizer must be 'byte' or 'bpe:<vocab_size>'") as config_err:
            load(None, [f"data.tokenizer={bad}"])
        with pytest.raises(DataError) as data_err:
            parse_spec(bad)
        assert str(config_err.value) == str(data_err.value)


@dataclasses.dataclass(frozen=True)
class Knobs:
    width: int = 1
    rate: float | None = None


def test_read_fields_takes_the_keys_from_the_fields_and_the_types_from_the_annotations():
    assert read_fields(Knobs, {"width": 3, "rate": 2}, "knobs") == {"width": 3, "rate": 2.0}
    assert read_fields(Knobs, {"rate": None}, "knobs") == {"rate": None}
    with pytest.raises(ConfigError, match=r"^f.toml: key 'knobs.depth' is unknown; known keys here: width, rate$"):
        read_fields(Knobs, {"depth": 1}, "knobs", Where("f.toml"))
    with pytest.raises(ConfigError, match=r"^config key 'knobs.width' must be int, got 1.5 \(float\)$"):
        read_fields(Knobs, {"width": 1.5}, "knobs")
    with pytest.raises(ConfigError, match=r"^config key 'knobs' must be a table$"):
        read_fields(Knobs, 3, "knobs")


@pytest.mark.parametrize("override, message", [
    ("train.lr=0", "config key 'train.lr' must be positive, got 0.0"),
    ("train.lr=inf", "config key 'train.lr' must be a finite number, got inf"),
    ("model.d_ff=0", "config key 'model.d_ff' must be positive, got 0"),
    ("train.weight_decay=-1", "config key 'train.weight_decay' must be >= 0, got -1.0"),
    ("checkpoint.every=-1", "config key 'checkpoint.every' must be >= 0, got -1"),
    ("train.beta2=1", "config key 'train.beta2' must be in [0, 1), got 1.0"),
    ("train.decay_fraction=1.5", "config key 'train.decay_fraction' must be in [0, 1], got 1.5"),
    ("data.val_fraction=0", "config key 'data.val_fraction' must be in (0, 1), got 0.0"),
    ("model.mlp=relu", "config key 'model.mlp' must be one of gelu, swiglu, got 'relu'"),
    ("data.bin_dtype=uint8", "config key 'data.bin_dtype' must be one of uint16, uint32, got 'uint8'"),
])
def test_a_value_outside_its_fields_declared_range_is_refused_in_one_wording(override, message):
    with pytest.raises(ConfigError) as err:
        load(None, [override])
    assert str(err.value) == message


def test_the_edges_of_the_closed_ranges_are_accepted():
    edges = ["train.weight_decay=0", "train.grad_clip=0", "train.beta1=0", "train.min_lr_ratio=1",
             "train.decay_fraction=0", "train.seed=0", "train.warmup_steps=0", "checkpoint.every=0"]
    config = load(None, edges)
    assert (config.train.weight_decay, config.train.beta1, config.train.min_lr_ratio, config.checkpoint.every) == \
        (0.0, 0.0, 1.0, 0)


def test_check_range_names_the_file_and_key_passes_none_and_refuses_any_non_finite_float():
    where = Where("spec.toml")
    with pytest.raises(ConfigError, match=r"^spec.toml: key 'x\[1\]' must be positive, got -2$"):
        config_lib.check_range("x[1]", -2, config_lib.POSITIVE, where)
    with pytest.raises(ConfigError, match=r"^spec.toml: key 'x' must be a finite number, got nan$"):
        config_lib.check_range("x", float("nan"), None, where)
    assert config_lib.check_range("x", None, config_lib.POSITIVE, where) is None
    assert config_lib.check_value("x", 2, float, config_lib.POSITIVE, where) == 2.0


def test_the_documented_meaning_of_a_key_ends_with_its_declared_range():
    meanings = {key: meaning for key, _, meaning in config_lib.documented_keys()}
    assert meanings["train.lr"] == "peak learning rate (AdamW); must be positive"
    assert meanings["model.mlp"].endswith("; must be one of gelu, swiglu")
    assert meanings["train.beta1"].endswith("; must be in [0, 1)")
    assert "must be" not in meanings["data.source"]

import glob

import pytest

from scaling.errors import ConfigError
from sweeps import spec as spec_lib

GOOD = """
kind = "isoflop"
[sizes]
n_params = [3e4, 6e4]
[isoflop]
budgets = [1e10, {flops = 3e10, n_params = [6e4, 1.2e5]}]
[base.train]
seq_len = 32
"""


def parse(text: str):
    return spec_lib.parse_text(text, "test.toml")


def test_good_spec_parses_into_frozen_dataclasses():
    spec = parse(GOOD)
    assert spec.kind == "isoflop" and spec.name == "test"
    assert spec.sizes.n_params == (3e4, 6e4)
    assert spec.isoflop.budgets[0].flops == 1e10 and spec.isoflop.budgets[0].n_params is None
    assert spec.isoflop.budgets[1].n_params == (6e4, 1.2e5)
    assert spec.isoflop.formula == "flops_exact" and spec.isoflop.tolerance == 0.01
    assert spec.base_config().train.seq_len == 32


def test_ranges_are_log_spaced_and_inclusive():
    spec = parse(GOOD.replace("n_params = [3e4, 6e4]", "n_params = {min = 1e4, max = 1e6, num = 3}"))
    assert spec.sizes.n_params == pytest.approx((1e4, 1e5, 1e6))


@pytest.mark.parametrize("text, key", [
    (GOOD.replace('kind = "isoflop"', 'kind = "chinchilla"'), "kind"),
    (GOOD.replace("[sizes]", "[sizes]\nwidth = 3"), "sizes.width"),
    (GOOD + "\n[grid]\ntokens = [1]\n", "grid"),
    (GOOD.replace("budgets = [1e10, {flops = 3e10, n_params = [6e4, 1.2e5]}]", "budgets = []"), "isoflop.budgets"),
    (GOOD.replace("budgets = [1e10,", "budgets = [-1e10,"), "isoflop.budgets[0]"),
    (GOOD.replace("[isoflop]", "[isoflop]\nformula = \"6nd\""), "isoflop.formula"),
    (GOOD.replace("n_params = [3e4, 6e4]", "n_params = {min = 1e4, num = 3}"), "sizes.n_params"),
    (GOOD.replace("seq_len = 32", "seq_len = 32\nsteps = 10"), "base.train.steps"),
    (GOOD.replace("seq_len = 32", "seq_lenn = 32"), "base.train.seq_lenn"),
    (GOOD + "\n[base.model]\nd_model = 64\n", "base.model.d_model"),
    ('kind = "grid"\n[sizes]\nn_params = [3e4]\n[grid]\ntokens = []\n', "grid.tokens"),
    ('kind = "grid"\n[sizes]\nn_params = [3e4]\n[grid]\n', "grid"),
    ('kind = "wsd"\n[sizes]\nn_params = [3e4]\n[wsd]\nbranch_tokens = [1e5]\ndecay_fraction = 1.5\n', "wsd.decay_fraction"),
    ('kind = "wsd"\n[sizes]\nn_params = [3e4]\n[wsd]\nbranch_tokens = [1e5]\n[base.train]\nschedule = "cosine"\n',
     "base.train.schedule"),
    ('kind = "grid"\n[grid]\ntokens = [1e5]\n', "sizes.n_params"),
])
def test_malformed_specs_name_the_key(text, key):
    with pytest.raises(ConfigError) as err:
        parse(text)
    message = str(err.value)
    assert "test.toml" in message
    assert f"'{key}'" in message or f"{key}" in message.split(":")[1], message
    assert "\n" not in message


def test_overrides_apply_before_validation():
    spec = spec_lib.parse_text(GOOD, "test.toml", ["base.train.seq_len=64", "hparams.lr=1e-3"])
    assert spec.base_config().train.seq_len == 64 and spec.hparams.lr == 1e-3
    with pytest.raises(ConfigError, match="hparams.bogus"):
        spec_lib.parse_text(GOOD, "test.toml", ["hparams.bogus=1"])


def test_shipped_specs_parse():
    paths = sorted(glob.glob(str(spec_lib.Path(spec_lib.__file__).parent / "*.toml")))
    names = {spec_lib.Path(p).stem for p in paths}
    assert {"quickstart", "isoflop_cpu", "wsd_cpu", "gpu_isoflop"} <= names
    for path in paths:
        spec_lib.load(path)

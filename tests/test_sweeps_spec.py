import glob
import math

import pytest

from scaling import config as config_lib
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


CENTRED = """
kind = "isoflop"
[sizes]
aspect_ratio = 16
[isoflop]
budgets = [1e11, 1e12]
points = 5
span = 16
prior = "tokens_per_param:20"
"""


def write_fit(tmp_path, form: str, params: dict, name: str = "FIT.json", **spec) -> str:
    """A FIT.json as `scaling fit --out` writes it (the parts a prior reads)."""
    import json

    path = tmp_path / name
    path.write_text(json.dumps({"schema": "scaling.fit/1", "params": params,
                                "spec": {"method": "isoflop", "form": form, "n_convention": "total",
                                         "flops": "flops_6nd", **spec}}))
    return str(path)


def test_centred_sizes_are_log_uniform_over_the_span_around_the_prior():
    iso = parse(CENTRED).isoflop
    assert iso.points == 5 and iso.span == 16 and iso.prior.text == "tokens_per_param:20"
    for flops in (1e11, 1e12):
        n_opt = math.sqrt(flops / (6 * 20))  # C = 6 N D with D = 20 N
        assert iso.prior.n_opt(flops) == pytest.approx(n_opt)
        sizes = iso.centred_sizes(flops)
        assert math.prod(sizes) ** (1 / 5) == pytest.approx(n_opt)  # geometric centre
        assert sizes[-1] / sizes[0] == pytest.approx(16)
        ratios = [b / a for a, b in zip(sizes, sizes[1:])]
        assert ratios == pytest.approx([2.0] * 4)  # 16 ** (1/4)
        assert sizes[2] == pytest.approx(n_opt)  # an odd count puts a size on the optimum


def test_span_defaults_to_16_and_even_points_straddle_the_optimum():
    iso = parse(CENTRED.replace("span = 16\n", "").replace("points = 5", "points = 4")).isoflop
    sizes = iso.centred_sizes(1e12)
    assert iso.span == 16 and sizes[-1] / sizes[0] == pytest.approx(16)
    assert math.sqrt(sizes[1] * sizes[2]) == pytest.approx(iso.prior.n_opt(1e12))


def test_fit_json_priors_give_the_fits_own_n_opt(tmp_path):
    from analysis.frontier import optimum_from_params  # the tests may cross the layers; sweeps/ may not

    chinchilla = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}
    power_law = {"k_N": 0.09, "a": 0.52, "k_D": 1.8, "b": 0.48}
    for form, params in (("chinchilla", chinchilla), ("power_law", power_law)):
        path = write_fit(tmp_path, form, params, f"{form}.json")
        prior = parse(CENTRED.replace("tokens_per_param:20", f"fit:{path}")).isoflop.prior
        for flops in (1e11, 1e15, 1e20):
            assert prior.n_opt(flops) == pytest.approx(float(optimum_from_params(form, params, flops)["N_opt"]))
        assert prior.flops == "flops_6nd" and prior.n_convention == "total"


def test_a_prior_from_a_fit_written_by_the_analysis_reads(tmp_path):
    from analysis.result import FitResult, FitSpec

    spec = FitSpec(method="parametric", form="chinchilla", loss="huber_log", delta=1e-3, init_grid=None,
                   n_convention="total", flops="flops_exact", data_hash="x", n_points=9)
    fit = FitResult(spec=spec, params={"E": 1.5, "A": 300.0, "B": 500.0, "alpha": 0.3, "beta": 0.3})
    (tmp_path / "FIT.json").write_text(fit.to_json())
    prior = parse(CENTRED.replace("tokens_per_param:20", f"fit:{tmp_path / 'FIT.json'}")).isoflop.prior
    # alpha = beta: a = 1/2 and G = (A/B)^(1/0.6)
    assert prior.exponent == pytest.approx(0.5)
    assert prior.n_opt(6e12) == pytest.approx((300 / 500) ** (1 / 0.6) * 1e6)


def test_explicit_sizes_keep_working_beside_a_prior():
    spec = parse(GOOD.replace("[isoflop]", '[isoflop]\nprior = "tokens_per_param:20"'))
    assert spec.sizes.n_params == (3e4, 6e4) and spec.isoflop.points is None
    assert spec.isoflop.prior.exponent == 0.5


@pytest.mark.parametrize("change, key", [
    (("points = 5", "points = 2"), "isoflop.points"),
    (("points = 5", "points = 4.5"), "isoflop.points"),
    (("points = 5", 'points = "five"'), "isoflop.points"),
    (("span = 16", "span = 1"), "isoflop.span"),
    (("span = 16", "span = 0.5"), "isoflop.span"),
    (("span = 16", "span = -4"), "isoflop.span"),
    (('prior = "tokens_per_param:20"\n', ""), "isoflop.points"),  # points need a prior
    (("points = 5\nspan = 16\n", "span = 16\n"), "isoflop.span"),  # span without points
    (("[sizes]", "[sizes]\nn_params = [3e4, 6e4]"), "isoflop.points"),  # both a list and points
    (("tokens_per_param:20", "tokens_per_param:0"), "isoflop.prior"),
    (("tokens_per_param:20", "tokens_per_param:lots"), "isoflop.prior"),
    (("tokens_per_param:20", "chinchilla"), "isoflop.prior"),
    (("tokens_per_param:20\"", 'tokens_per_param:20"\nadaptive_start = "tokens_per_param:5"'),
     "isoflop.adaptive_start"),  # adaptive_start without prior = "adaptive"
    (("tokens_per_param:20", "fit:"), "isoflop.prior"),
    (("tokens_per_param:20", "fit:/no/such/FIT.json"), "isoflop.prior"),
    (('"tokens_per_param:20"', "20"), "isoflop.prior"),
    (("budgets = [1e11, 1e12]", "budgets = [{flops = 1e11, n_params = [3e4, 6e4]}]"), "isoflop.points"),
])
def test_malformed_centring_keys_name_the_key(change, key):
    text = CENTRED.replace(*change)
    assert text != CENTRED
    with pytest.raises(ConfigError) as err:
        parse(text)
    message = str(err.value)
    assert message.startswith("test.toml: ") and f"'{key}'" in message and "\n" not in message, message


@pytest.mark.parametrize("content, why", [
    ("{not json", "not readable JSON"),
    ('{"schema": "other/1", "params": {}, "spec": {"form": "power_law"}}', "not a fit result"),
    ('[1, 2]', "not a fit result"),
    ('{"schema": "scaling.fit/1", "params": {"N_c": 1, "D_c": 1, "alpha_N": 0.1, "alpha_D": 0.1}, '
     '"spec": {"form": "kaplan_nd"}}', "'kaplan_nd' fit"),
    ('{"schema": "scaling.fit/1", "params": {"k_N": null, "a": 0.5}, "spec": {"form": "power_law"}}', "k_N"),
    ('{"schema": "scaling.fit/1", "params": {"k_N": -1, "a": 0.5}, "spec": {"form": "power_law"}}', "positive"),
    ('{"schema": "scaling.fit/1", "params": {"E": 1, "A": 1, "B": 1, "alpha": 0.3}, '
     '"spec": {"form": "chinchilla"}}', "beta"),
    ('{"schema": "scaling.fit/1", "params": [], "spec": {"form": "power_law"}}', "'params'"),
])
def test_bad_fit_files_are_refused_naming_the_file(tmp_path, content, why):
    path = tmp_path / "FIT.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        parse(CENTRED.replace("tokens_per_param:20", f"fit:{path}"))
    message = str(err.value)
    assert "'isoflop.prior'" in message and str(path) in message and why in message and "\n" not in message, message
    with pytest.raises(ConfigError, match="is not a file"):
        parse(CENTRED.replace("tokens_per_param:20", f"fit:{tmp_path}"))


def test_list_hparams_become_axes_whose_product_gives_one_scalar_point_each():
    spec = parse(GOOD + "\n[hparams]\nlr = [1e-3, 3e-3]\nseed = [0, 1, 2]\nwarmup_fraction = 0.1\n")
    assert spec.hparams.axes == (("lr", (1e-3, 3e-3)), ("seed", (0, 1, 2)))
    points = spec.hparams.points()
    assert len(points) == 6
    assert {(hp.lr, hp.seed) for hp, _ in points} == {(lr, s) for lr in (1e-3, 3e-3) for s in (0, 1, 2)}
    assert all(hp.axes == () and hp.warmup_fraction == 0.1 for hp, _ in points)
    assert points[0][1] == " lr=0.001 seed=0" and points[-1][1] == " lr=0.003 seed=2"


def test_scalar_hparams_are_one_point_with_no_label_suffix():
    spec = parse(GOOD + "\n[hparams]\nlr = 1e-3\nweight_decay = 0.0\nseed = 4\nlr_multiplier = 2\n")
    assert spec.hparams.points() == ((spec.hparams, ""),)
    assert (spec.hparams.weight_decay, spec.hparams.seed, spec.hparams.lr_multiplier) == (0.0, 4, 2.0)


@pytest.mark.parametrize("line, key, why", [
    ("lr = []", "hparams.lr", "empty list"),
    ('lr = [1e-3, "fast"]', "hparams.lr[1]", "must be float, got 'fast' (str)"),
    ("lr = [-1e-3]", "hparams.lr[0]", "must be positive, got -0.001"),
    ("lr = [1e-3, 1e-3]", "hparams.lr", "lists a value twice"),
    ("seed = [0, 1.5]", "hparams.seed[1]", "must be int, got 1.5 (float)"),
    ("seed = 2.0", "hparams.seed", "must be int, got 2.0 (float)"),
    ("seed = -1", "hparams.seed", "must be >= 0, got -1"),
    ("weight_decay = [0.1, -0.1]", "hparams.weight_decay[1]", ">= 0"),
    ("warmup_fraction = [0.1, 1.0]", "hparams.warmup_fraction[1]", "[0, 1)"),
    ("batch_size = [8, 12.5]", "hparams.batch_size[1]", "must be int, got 12.5 (float)"),
    ("batch_size = [8, 0.0]", "hparams.batch_size[1]", "must be positive, got 0"),
    ("lr_width_exponent = [1, inf]", "hparams.lr_width_exponent[1]", "must be a finite number, got inf"),
    ("lr_multiplier = [0, 1]", "hparams.lr_multiplier[0]", "positive"),
])
def test_bad_hparam_values_name_the_element(line, key, why):
    with pytest.raises(ConfigError) as err:
        parse(GOOD + f"\n[hparams]\n{line}\n")
    message = str(err.value)
    assert f"'{key}'" in message and why in message and "\n" not in message, message


@pytest.mark.parametrize("hparam, key, value", [
    ("lr", "lr", "0"), ("lr", "lr", "nan"), ("weight_decay", "weight_decay", "-1"), ("seed", "seed", "-1"),
    ("seed", "seed", "1.5"), ("batch_size", "batch_size", "0"), ("lr", "lr", '"fast"'),
])
def test_a_config_and_a_spec_hparams_list_refuse_a_value_by_the_same_rule_in_the_same_words(hparam, key, value):
    with pytest.raises(ConfigError) as from_config:
        config_lib.load(None, [f"train.{key}={value}"])
    with pytest.raises(ConfigError) as from_spec:
        parse(GOOD + f"\n[hparams]\n{hparam} = [{value}]\n")
    assert str(from_config.value).startswith(f"config key 'train.{key}' ")
    assert str(from_spec.value).startswith(f"test.toml: key 'hparams.{hparam}[0]' ")
    assert str(from_config.value).split("' ", 1)[1] == str(from_spec.value).split("' ", 1)[1]


def test_whole_hparams_take_a_whole_float_as_the_int_it_equals_except_seed():
    spec = parse(GOOD + "\n[hparams]\nbatch_size = [8.0, 16]\nlr_base_width = 64.0\n")
    assert spec.hparams.axes == (("batch_size", (8, 16)),) and spec.hparams.lr_base_width == 64
    assert all(isinstance(size, int) for size in spec.hparams.axes[0][1])
    with pytest.raises(ConfigError, match=r"'hparams.seed' must be int, got 1.0 \(float\)"):
        parse(GOOD + "\n[hparams]\nseed = 1.0\n")


def test_a_listed_hparam_still_conflicts_with_base_train():
    with pytest.raises(ConfigError, match="'base.train.seed' conflicts with hparams.seed"):
        parse(GOOD.replace("seq_len = 32", "seq_len = 32\nseed = 3") + "\n[hparams]\nseed = [0, 1]\n")


def test_set_reads_values_as_the_run_config_does_and_refuses_a_key_below_a_value():
    spec = spec_lib.parse_text(GOOD, "test.toml", ["base.train.peak_flops=2e12", "base.data.source=/some/path"])
    assert spec.base_config().train.peak_flops == 2e12 and spec.base_config().data.source == "/some/path"
    assert spec_lib.parse_text(GOOD, "test.toml", ["base.train.peak_flops=null"]).base_config().train.peak_flops is None
    with pytest.raises(ConfigError, match=r"--set name.first: 'name' is not a table in test.toml"):
        spec_lib.parse_text(GOOD, "test.toml", ["name=x", "name.first=y"])
    with pytest.raises(ConfigError, match=r"--set expects key=value"):
        spec_lib.parse_text(GOOD, "test.toml", ["base.train.seed"])


@pytest.mark.parametrize("table, text, cls, leave_out", [
    ("sizes", GOOD.replace("[sizes]", "[sizes]\nbogus = 1"), spec_lib.Sizes, ()),
    ("hparams", GOOD + "\n[hparams]\nbogus = 1\n", spec_lib.HParams, ("axes",)),
    ("isoflop", GOOD.replace("[isoflop]", "[isoflop]\nbogus = 1"), spec_lib.IsoFlop, ("adaptive", "centres")),
    ("wsd", 'kind = "wsd"\n[sizes]\nn_params = [3e4]\n[wsd]\nbranch_tokens = [1e5]\nbogus = 1\n', spec_lib.Wsd, ()),
])
def test_a_tables_known_keys_are_its_dataclass_fields(table, text, cls, leave_out):
    with pytest.raises(ConfigError) as err:
        parse(text)
    message = str(err.value)
    assert message.startswith(f"test.toml: key '{table}.bogus' is unknown; known keys here: "), message
    listed = set(message.split("known keys here: ")[1].split(", "))
    fields = {f.name for f in spec_lib.dataclasses.fields(cls)} - set(leave_out)
    assert fields <= listed and listed - fields <= {"adaptive_start"}

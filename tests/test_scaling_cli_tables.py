import argparse

import pytest

from scaling.errors import ConfigError
from scaling_cli import tables


@pytest.mark.parametrize("option, choices", [("n_convention", tables.N_CONVENTIONS),
                                             ("flops", tables.FLOP_FORMULAS), ("best_of", tables.BEST_OF)])
def test_the_flags_offer_exactly_what_the_loader_takes(option, choices):
    import pandas as pd

    from analysis.loading import load_runs
    from scaling.errors import DataError

    with pytest.raises(DataError) as info:  # the loader names the values it takes
        load_runs(pd.DataFrame(), **{option: "bogus"})
    offered = str(info.value).partition("use one of ")[2]
    assert offered in (str(sorted(choices)), ", ".join(choices))


def test_columns_parse_repeated_and_comma_separated_pairs():
    parsed = tables.parse_columns(['N="Model Size",C=flops', "loss='final loss'", ","])
    assert parsed == {"N": "Model Size", "C": "flops", "loss": "final loss"}
    assert tables.parse_columns([]) is None


@pytest.mark.parametrize("item, message", [("N", "expected NAME=COLUMN"), ("=size", "expected NAME=COLUMN"),
                                           ("params=size", "NAME must be one of N, D, C")])
def test_a_bad_column_pair_is_named(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        tables.parse_columns([item])
    assert repr(item) in str(info.value)


def test_floats_parse_positive_numbers_and_name_the_flag_otherwise():
    assert tables.parse_floats(None, "--budgets") is None
    assert tables.parse_floats("1e19, 3e19,", "--budgets") == [1e19, 3e19]
    for text in ("1e19,x", "", "0,1e19", "-1", "inf", "nan"):
        with pytest.raises(ConfigError, match="^--predict-at "):
            tables.parse_floats(text, "--predict-at")


def test_the_table_flags_read_a_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("size,tokens,loss\n1e6,2e7,3.5\n2e6,4e7,3.2\n4e6,8e7,3.0\n")
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    tables.add_table_arguments(parser)
    args = parser.parse_args([str(path), "--columns", "N=size", "D=tokens"])
    table = tables.load_table(args, loss_label=args.loss_label)
    assert list(table.N) == [1e6, 2e6, 4e6] and list(table.D) == [2e7, 4e7, 8e7]
    assert args.n_convention == "total" and args.flops is None
    with pytest.raises(SystemExit):
        parser.parse_args([str(path), "--flops", "7nd"])

"""scaling.train_cli: `scaling train --help` lists every config key, its default and its meaning, from the config
dataclasses themselves, so that a key added to scaling/config.py cannot be missing from the help."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scaling import config, train_cli
from scaling_cli.main import main


def train_help(capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_every_field_of_every_section_has_a_meaning():
    undocumented = [f"{section}.{f.name}" for section, cls in config.SECTIONS.items() for f in dataclasses.fields(cls)
                    if not f.metadata.get("help", "").strip()]
    assert undocumented == [], f"declare these fields with scaling.config.option(default, meaning): {undocumented}"


def test_help_lists_every_key_with_its_default_and_meaning(capsys):
    flat = " ".join(train_help(capsys).split())  # the meanings are wrapped over lines
    keys = config.documented_keys()
    assert len(keys) == sum(len(dataclasses.fields(cls)) for cls in config.SECTIONS.values())
    for key, default, meaning in keys:
        shown = "unset" if default is None else json.dumps(default)
        assert f"{key} = {shown} {' '.join(meaning.split())}" in flat, key


def test_defaults_shown_are_the_config_defaults(capsys):
    flat = " ".join(train_help(capsys).split())
    defaults = config.to_dict(config.RunConfig())
    assert f"train.lr = {json.dumps(defaults['train']['lr'])} " in flat
    assert f"model.tie_embeddings = {json.dumps(defaults['model']['tie_embeddings'])} " in flat
    assert "model.d_ff = unset " in flat and defaults["model"]["d_ff"] is None


def test_config_option_names_every_section(capsys):
    text = " ".join(train_help(capsys).split())
    assert "--config FILE.toml TOML config with " + ", ".join(f"[{s}]" for s in config.SECTIONS) in text


def test_long_meanings_wrap_within_the_help_width():
    epilog = train_cli.config_keys_help(width=80)
    assert max(len(line) for line in epilog.splitlines()) <= 80
    for key, _, _ in config.documented_keys():
        assert sum(line.startswith(f"  {key} = ") for line in epilog.splitlines()) == 1, key

"""The `creamviz` command: parsers generated from the config dataclasses, one-line errors naming
the flag with exit status 2. (No training here: the 2-step CLI runs live in test_training.py.)"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from creamviz import cli
from creamviz.samplers import sampler_parameters


def test_every_simple_train_config_field_is_a_flag():
    from creamviz.training import TrainConfig

    parser = cli.build_parser("train")
    flags = {a.dest: a.option_strings for a in parser._actions}
    for f in dataclasses.fields(TrainConfig):
        if f.name == "sampler_params":  # a dict: it comes from the sampler flags
            assert f.name not in flags
            continue
        assert flags[f.name][0] == "--" + f.name.replace("_", "-"), f.name
    for name in sampler_parameters():
        assert flags[name] == ["--" + name.replace("_", "-")]


def test_a_new_config_field_appears_without_touching_the_cli():
    @dataclasses.dataclass
    class Config:
        steps: int = 3  # optimizer steps
        rate: float | None = None  # a rate; None -> automatic
        name: str = "x"  # the run name
        fast: bool = False  # go fast
        table: dict = dataclasses.field(default_factory=dict)  # not a flag

    parser = cli.OneLineParser(prog="t")
    added = cli.add_dataclass_arguments(parser, Config)
    assert added == ["steps", "rate", "name", "fast"]
    ns = parser.parse_args(["--steps", "5", "--rate", "none", "--fast"])
    assert cli.dataclass_from_args(Config, ns) == Config(steps=5, rate=None, name="x", fast=True)
    assert parser.parse_args(["--rate", "0.5", "--no-fast"]).rate == 0.5
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["steps"] == "optimizer steps" and helps["rate"] == "a rate; None -> automatic"


@pytest.mark.parametrize("argv,flag,text", [
    (["--k", "0"], "--k", "k=0 is out of range"),
    (["--target-len", "100"], "--target-len", "target_len=100"),
    (["--sampler", "bogus"], "--sampler", "bogus"),
    (["--sampler", "pose", "--k", "3"], "--k", "unknown parameter(s) k for sampler 'pose'"),
    (["--steps", "x"], "--steps", "steps must be int"),
    (["--lr", "-1"], "--lr", "lr=-1 is out of range"),
    (["--factor", "inf"], "--factor", "factor=inf"),
    (["--middle", "gauss"], "--middle", "invalid choice"),
    (["--train-len", "128"], "--k", "k defaults to 4·L/N = 64"),  # N below the window: default k too big
])
def test_bad_train_flags_are_one_line_naming_the_flag(argv, flag, text, capsys, tmp_path):
    rc = cli.main(["train", *argv, "--out", str(tmp_path / "run"), "--steps" if "--steps" not in argv else "--seed",
                   "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"creamviz train: error: argument {flag}: ") and text in err, err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_flag_for_error_prefers_the_name_with_a_value():
    parser = cli.build_parser("train")
    assert cli.flag_for_error("target_len=2000 must be a multiple of train_len=256", parser) == "--target-len"
    assert cli.flag_for_error("nothing known here", parser) is None


def test_usage_and_unknown_command(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("train", "demo", "pretrain"))
    assert cli.main(["bogus"]) == 2 and "unknown command 'bogus'" in capsys.readouterr().err


def test_module_entry_points_run_the_cli(tmp_path):
    """`python -m creamviz.cli train ...` (what `accelerate launch -m creamviz.cli train` runs)."""
    proc = subprocess.run([sys.executable, "-m", "creamviz.cli", "train", "--k", "0", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("creamviz train: error: argument --k: k=0")
    assert proc.stdout == ""

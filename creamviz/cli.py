"""The `creamviz` command: one sub-command per pipeline stage, every parser in this module.

Each parser is generated from its configuration dataclass (``TrainConfig``, ``DemoConfig``,
``PretrainConfig``): one flag per field (``--field-name``), its type from the annotation, its
default from the dataclass and its help from the field's comment, so a field added to a config
appears here without touching this file. ``creamviz train`` also gets one flag per registered
sampler parameter (:func:`creamviz.samplers.sampler_parameters`).

    creamviz train --sampler cream --rope yarn --target-len 2048 --steps 200 --out runs/cream
    python -m creamviz.cli train ...                                # the same
    accelerate launch --num_processes 2 --cpu -m creamviz.cli train --steps 20 --out runs/ddp

Errors are one line naming the flag (``creamviz train: error: argument --k: k=0 is out of
range ...``) and exit status 2; set ``CREAMVIZ_TRACEBACK=1`` to see the traceback as well.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "Command", "main", "build_parser", "add_dataclass_arguments", "field_comments",
           "dataclass_from_args", "flag_for_error"]

SIMPLE_TYPES = (int, float, str, bool, Path)  # field types that become flags (dicts, nested configs do not)


# --------------------------------------------------------------------------- parsers from dataclasses
class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``) and exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except a None default (the help says what None means)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, argparse.SUPPRESS) else super()._get_help_string(action)


def field_comments(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field in a dataclass's source (its own and its bases')."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            lines, _ = inspect.getsourcelines(klass)
        except (OSError, TypeError):  # no source (frozen app, REPL class)
            continue
        source = textwrap.dedent("".join(lines))
        body = ast.parse(source).body[0]
        src_lines = source.splitlines()
        for node in getattr(body, "body", []):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                line = src_lines[node.end_lineno - 1] if node.end_lineno else ""
                first = src_lines[node.lineno - 1]
                for text in (line, first):
                    if "#" in text:
                        out[node.target.id] = text.split("#", 1)[1].strip()
                        break
    return out


def _flag_type(tp: Any) -> tuple[type | None, bool]:
    """``(base type, optional)`` of an annotation; base None when the field is not flag-able."""
    optional = False
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) != 1:
            return None, optional
        tp = args[0]
    return (tp if tp in SIMPLE_TYPES else None), optional


def _parse_as(base: type, optional: bool, name: str) -> Callable[[str], Any]:
    def convert(text: str):
        if optional and text.strip().lower() == "none":
            return None
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {base.__name__}"
                                             f"{' or none' if optional else ''}, got {text!r}") from None

    convert.__name__ = base.__name__
    return convert


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: Iterable[str] = (),
                            defaults: dict | None = None, aliases: dict | None = None,
                            helps: dict | None = None) -> list[str]:
    """Add one flag per simple field of dataclass ``cls`` (int, float, str, bool, Path, or one of
    them | None); returns the field names added. bool fields get ``--x/--no-x``; optional fields
    accept ``none``. ``defaults`` overrides dataclass defaults, ``aliases`` adds extra flag names,
    ``helps`` extra help text; the help is otherwise the field's source comment."""
    comments = field_comments(cls)
    hints = typing.get_type_hints(cls)
    defaults, aliases, helps = defaults or {}, aliases or {}, helps or {}
    added = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        base, optional = _flag_type(hints[f.name])
        if base is None:
            continue
        if f.name in defaults:
            default = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        text = helps.get(f.name) or f.metadata.get("help") or comments.get(f.name, "")
        if base is bool:
            parser.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=text)
            for alias in aliases.get(f.name, ()):
                parser.add_argument(alias, dest=f.name, action="store_true", help=f"same as {flag(f.name)}")
        else:
            parser.add_argument(flag(f.name), *aliases.get(f.name, ()), dest=f.name, default=default,
                                type=_parse_as(base, optional, f.name), metavar=f.name.upper(), help=text)
        added.append(f.name)
    return added


def dataclass_from_args(cls: type, ns: argparse.Namespace, **extra) -> Any:
    """``cls(**the parsed fields, **extra)``: every namespace entry named like a field."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in vars(ns).items() if k in names}, **extra)


def flag_for_error(message: str, parser: argparse.ArgumentParser) -> str | None:
    """The flag a library ValueError is about: the first parser dest named in the message
    (``name=`` forms first), e.g. "k=0 is out of range" -> "--k"."""
    dests = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings and a.dest != "help"}
    for pattern in (r"(?<![\w.-])({})(?==)", r"(?<![\w.-])({})(?![\w-])"):
        hits = [(m.start(), m.group(1)) for name in dests
                for m in re.finditer(pattern.format(re.escape(name)), message)]
        if hits:
            return dests[min(hits)[1]]
    return None


def _fail(prog: str, parser: argparse.ArgumentParser, err: BaseException) -> int:
    message = " ".join(str(err).split()) or type(err).__name__
    if not isinstance(err, ValueError):
        message = f"{type(err).__name__}: {message}"
    param = getattr(err, "parameter", None)
    where = flag(param) if param and flag(param) in parser._option_string_actions else flag_for_error(message, parser)
    print(f"{prog}: error: {f'argument {where}: ' if where else ''}{message}", file=sys.stderr)
    if os.environ.get("CREAMVIZ_TRACEBACK"):
        import traceback

        traceback.print_exception(err)
    return 2


# --------------------------------------------------------------------------- train
def _train_parser() -> argparse.ArgumentParser:
    from creamviz.samplers import SAMPLERS, load_sampler_plugins, sampler_parameters
    from creamviz.training import TrainConfig

    load_sampler_plugins()  # schemes other packages register under the "creamviz.samplers" entry points
    p = OneLineParser(prog="creamviz train", formatter_class=_Formatter,
                      description="Fine-tune a model with a position sampler (creamviz.training.train).")
    add_dataclass_arguments(p, TrainConfig, helps={
        "sampler": f"position sampler: {' | '.join(SAMPLERS)} (any register_sampler'ed scheme)",
        "data": "'mix' (corpus text + synthetic retrieval tasks), a UTF-8 .txt file, a datasets save_to_disk "
                "directory or a .jsonl/.json/.parquet file (input_ids, text or messages column), or none (the "
                "corpus in creamviz/resources/corpus/, train split)",
    })
    group = p.add_argument_group("sampler parameters (passed only when given; each applies to the samplers "
                                 "that declare it)")
    owners: dict[str, list[str]] = {}
    for cls in SAMPLERS.values():
        for param in cls.parameters:
            owners.setdefault(param.name, []).append(cls.name)
    for name, param in sampler_parameters().items():
        default = f"default {param.auto_text or param.default}"
        extra = {"choices": param.choices} if param.choices else {"type": param.kind, "metavar": name.upper()}
        group.add_argument(flag(name), dest=name, default=None,
                           help=f"{'/'.join(owners[name])}: {param.help} ({default})", **extra)
    return p


def _train_run(ns: argparse.Namespace) -> int:
    from accelerate import PartialState

    from creamviz.samplers import sampler_parameters
    from creamviz.training import TrainConfig, train

    params = {k: getattr(ns, k) for k in sampler_parameters() if getattr(ns, k, None) is not None}
    config = dataclass_from_args(TrainConfig, ns, sampler_params=params)
    config.validate()
    lengths = config.lengths()  # N, L, the model's window W, the sampler's and RoPE's factors
    config.make_sampler(lengths)  # what cannot run is refused before anything is printed
    if PartialState().is_main_process:
        print(lengths.describe(config.sampler, config.sampler_params), flush=True)
    result = train(config, lengths=lengths)

    if PartialState().is_main_process:
        last = result.loss_log[-1]["loss"] if result.loss_log else float("nan")
        where = result.final_model if result.final_model else f"{result.out_dir} (stopped early)"
        print(f"creamviz train: {result.steps_done} steps in {result.wall_time_s:.1f} s, "
              f"last loss {last:.4f}; model: {where}")
    return 0


# --------------------------------------------------------------------------- demo
def _demo_parser() -> argparse.ArgumentParser:
    from creamviz.demo import DemoConfig

    p = OneLineParser(prog="creamviz demo", formatter_class=_Formatter,
                      description="Run the whole pipeline headless and write DIR/report.html + DIR/results.json.")
    add_dataclass_arguments(p, DemoConfig, aliases={"skip_experiment": ["--no-experiment"]},
                            defaults={"n_samples": None},
                            helps={"n_samples": "samples behind every sampling statistic "
                                                f"(default {DemoConfig.n_samples:,}; 20,000 with --quick)"})
    return p


def _demo_run(ns: argparse.Namespace) -> int:
    from creamviz.demo import DemoConfig, print_table, run_demo

    if ns.n_samples is None:
        ns.n_samples = 20_000 if ns.quick else DemoConfig.n_samples
    report, results = run_demo(dataclass_from_args(DemoConfig, ns))
    if "experiment" in results:
        print_table(results["experiment"])
    print(f"report: {report.resolve()}")
    return 0


# --------------------------------------------------------------------------- pretrain
def _pretrain_parser() -> argparse.ArgumentParser:
    from creamviz.tiny_base import PretrainConfig

    p = OneLineParser(prog="creamviz pretrain", formatter_class=_Formatter,
                      description="Rebuild the tiny base checkpoint shipped in creamviz/resources/tiny-base/.")
    add_dataclass_arguments(p, PretrainConfig, defaults={"out": None},
                            helps={"out": f"output directory (required; the shipped checkpoint is "
                                          f"{PretrainConfig.out})"})
    p.add_argument("--layers", type=int, default=None, help="TinyConfig.num_hidden_layers override")
    p.add_argument("--hidden", type=int, default=None, help="TinyConfig.hidden_size override")
    p.add_argument("--write-corpus", action="store_true", help="regenerate creamviz/resources/corpus/ and exit")
    p.add_argument("--build-eval-sets", action="store_true", help="regenerate creamviz/resources/eval/ and exit")
    return p


def _pretrain_run(ns: argparse.Namespace) -> int:
    import json

    from creamviz import tasks
    from creamviz.tiny_base import PretrainConfig, pretrain, write_corpus

    if ns.write_corpus:
        print(f"wrote {write_corpus()} characters to {tasks.CORPUS_PATH}")
        return 0
    if ns.build_eval_sets:
        print(tasks.build_eval_sets())
        return 0
    if ns.out is None:
        raise ValueError("out is required: --out DIR (use --out creamviz/resources/tiny-base to overwrite the shipped model)")
    if ns.stop_after is not None and ns.stop_after < 1:
        raise ValueError(f"stop_after={ns.stop_after} is out of range: valid is >= 1, or none (run all steps)")
    for name in ("steps", "batch_size", "threads", "eval_every", "save_every", "log_every", "warmup"):
        if getattr(ns, name) < (0 if name == "warmup" else 1):
            raise ValueError(f"{name}={getattr(ns, name)} is out of range: valid is >= {0 if name == 'warmup' else 1}")
    model = {}
    if ns.layers is not None:
        model["num_hidden_layers"] = ns.layers
    if ns.hidden is not None:
        model["hidden_size"] = ns.hidden
        model["intermediate_size"] = 4 * ns.hidden
    print(json.dumps(pretrain(dataclass_from_args(PretrainConfig, ns, model=model)), indent=2))
    return 0


# --------------------------------------------------------------------------- the command
@dataclass(frozen=True)
class Command:
    """A sub-command: its one-line help, a parser factory (called on use: imports stay lazy) and
    the function running the parsed namespace (returns the exit status)."""

    help: str
    parser: Callable[[], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]


# sub-command -> Command, or (module, one-line help) for a module with its own ``main(argv)``
COMMANDS: dict[str, Command | tuple[str, str]] = {
    "demo": Command("run the whole pipeline headless and write an HTML report", _demo_parser, _demo_run),
    "train": Command("fine-tune a model with a position sampler", _train_parser, _train_run),
    "pretrain": Command("rebuild the tiny base checkpoint shipped in data/", _pretrain_parser, _pretrain_run),
    "fetch-model": ("creamviz.fetch", "download and convert a named real model once (e.g. smollm2-135m)"),
    "study": ("creamviz.study", "sampler-parameter study: arms x seeds with CIs (summary.json)"),
}


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of sub-command ``name`` (a :class:`Command` entry)."""
    entry = COMMANDS[name]
    if not isinstance(entry, Command):
        raise ValueError(f"command {name!r} parses its own arguments (module {entry[0]})")
    return entry.parser()


def _usage() -> str:
    lines = ["usage: creamviz <command> [options]   (creamviz <command> --help for its flags)", "", "commands:"]
    for name, entry in COMMANDS.items():
        lines.append(f"  {name:<12} {entry.help if isinstance(entry, Command) else entry[1]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"creamviz: error: unknown command {name!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    entry = COMMANDS[name]
    if not isinstance(entry, Command):
        return int(importlib.import_module(entry[0]).main(rest) or 0)
    parser = entry.parser()
    try:
        ns = parser.parse_args(rest)
    except SystemExit as exit_:  # --help (0) or a parse error already printed on one line (2)
        return int(exit_.code or 0)
    try:
        return int(entry.run(ns) or 0)
    except Exception as err:  # noqa: BLE001 - one line naming the flag, never a traceback
        return _fail(parser.prog, parser, err)


if __name__ == "__main__":
    sys.exit(main())

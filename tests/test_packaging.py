"""The package installs: a wheel built from the source runs from a fresh venv with no source tree on
the path; environment.yml mirrors pyproject.toml; the Makefile installs the CPU torch first."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch", "kaleido": "python-kaleido", "build": "python-build"}  # PyPI -> conda-forge
PIP_ONLY = {"gguf", "playwright", "z3-solver", "mkdocstrings", "jupyter-server-mathjax", "wonderwords"}  # from pip, not conda-forge


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower()


def _extra(project: dict, name: str) -> list[str]:
    """An extra's requirements, with its references to other extras ("creamviz[docs]") expanded."""
    out = []
    for req in project["optional-dependencies"][name]:
        if _name(req) == project["name"]:
            for other in req[req.index("[") + 1:req.index("]")].split(","):
                out += _extra(project, other.strip())
        else:
            out.append(req)
    return out


def test_environment_mirrors_pyproject():
    """Every dependency (runtime + dev) is in environment.yml exactly once, with the same version
    range: from conda-forge under its conda name, or from pip for the few conda-forge lacks."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    py = project["requires-python"].removeprefix(">=")
    assert f"python={py}" in conda and "pip" in conda
    assert pip[-1] == "-e .[dev]"  # creamviz itself, last: its requirements are already met
    wanted = {_name(r): r for r in project["dependencies"] + _extra(project, "dev")}
    have_conda = {_name(d): d for d in conda if _name(d) not in ("python", "pip")}
    have_pip = {_name(d): d for d in pip[:-1]}
    assert not set(have_conda) & set(have_pip)
    for name, req in wanted.items():
        spec = req[len(name):]
        if name in PIP_ONLY:
            assert have_pip.get(name) == req, name
        else:
            assert have_conda.get(CONDA_NAMES.get(name, name), "").split("#")[0].strip() == \
                CONDA_NAMES.get(name, name) + spec, name
    extra = (set(have_conda) - {CONDA_NAMES.get(n, n) for n in wanted}) | (set(have_pip) - set(wanted))
    assert not extra, f"environment.yml has packages pyproject.toml does not declare: {extra}"


def test_makefile_installs_a_torch_inside_the_declared_range_first():
    """`make setup` installs torch before the package, and the torch it pins satisfies pyproject's range."""
    from packaging.requirements import Requirement

    make = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^TORCH\s*:=\s*torch==(\S+)", make, re.M).group(1)
    declared = next(Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                    ["dependencies"] if _name(r) == "torch")
    assert declared.specifier.contains(pinned), (pinned, str(declared.specifier))
    assert make.index("$(TORCH)\n") < make.index('-e ".[dev]"')
    for target in ("test", "demo", "lab", "bench", "lint"):
        assert re.search(rf"^{target}: setup", make, re.M), target


def test_figures_import_without_torch():
    """The samplers / coverage / figures half of the package is numpy + plotly only."""
    code = ("import sys, creamviz.figures, creamviz.coverage, creamviz.theorem, creamviz.lengths; "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_load_model_leaves_the_environment_alone(monkeypatch):
    from creamviz.models import load_model

    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    for var in offline:
        monkeypatch.delenv(var, raising=False)
    load_model("tiny")  # offline through local_files_only, not through the process environment
    assert [v for v in offline if v in os.environ] == []


@pytest.mark.slow
def test_the_wheel_runs_from_a_fresh_venv(tmp_path):
    """`python -m build` makes a wheel; installed (no editable install, no source tree on the path) into
    a fresh venv, `creamviz demo --quick --skip-experiment` and `load_model("tiny")` run from it."""
    src = tmp_path / "src"
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"], check=True,
                           capture_output=True, text=True).stdout.split()
    for f in files:  # a clean copy: nothing built or ignored in the checkout travels
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, text=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("creamviz-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    # the dependencies (torch, transformers, ...) from this interpreter's site-packages, as a plain
    # path: its .pth files (the editable creamviz hook among them) are not run there
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    run = tmp_path / "elsewhere"
    run.mkdir()
    check = ("import creamviz, creamviz.models as m, creamviz.resources as r; "
             "model = m.load_model('tiny'); "
             "print(creamviz.__file__); print(model.config.max_position_embeddings); "
             "print(r.resource_path('eval', 'kv_L512.jsonl').is_file())")
    out = subprocess.run([str(python), "-c", check], cwd=run, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    where, window, eval_set = out.stdout.split()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where  # the wheel's copy, not the checkout
    assert window == "256" and eval_set == "True"
    demo = subprocess.run([str(venv / "bin" / "creamviz"), "demo", "--quick", "--skip-experiment", "--out",
                           str(run / "demo")], cwd=run, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (run / "demo" / "report.html").stat().st_size > 10_000
    assert "report:" in demo.stdout

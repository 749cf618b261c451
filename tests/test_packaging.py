"""Set-up files stay consistent: environment.yml mirrors pyproject, Makefile installs torch first."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-e .[dev]" in pip
    expected = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    assert set(pip) - {"-e .[dev]"} == expected
    assert project["requires-python"] == ">=3.11"
    torch = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch and "==" not in torch[0], "the package must declare a torch range, not a pin"


def test_makefile_installs_cpu_torch_before_the_package():
    make = (ROOT / "Makefile").read_text()
    torch_at = make.index("$(TORCH)\n")
    assert re.search(r"TORCH\s*:=\s*torch==2\.13\.0", make)
    assert torch_at < make.index('-e ".[dev]"')
    for target in ("test", "demo", "lab", "bench", "lint"):
        assert re.search(rf"^{target}: setup", make, re.M), target


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert readme.index("make demo") < 400 and readme.index("make test") < 400


def test_figures_import_without_torch():
    """The samplers / coverage / figures half of the package is numpy + plotly only."""
    import subprocess
    import sys

    code = "import sys, creamviz.figures, creamviz.coverage, creamviz.theorem; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out

"""mkdocs hooks for the creamviz site (mkdocs.yml ``hooks:``).

- nav entries whose page is not in docs_dir are dropped (pages other topics add later appear when
  their file exists);
- MathJax 2 (bundled from jupyter-server-mathjax, with its STIX-Web fonts) is configured in every
  page's head, before any page loads it: $…$ in the notebooks, \\(…\\) from arithmatex;
- the docstrings' Sphinx roles (``:class:`X` ``) show as plain code;
- the mermaid loader that nbconvert's template inlines (a CDN import, never needed: no notebook
  has a mermaid diagram) is removed, so every page loads only bundled files.
"""

from __future__ import annotations

import re
from pathlib import Path

MERMAID = re.compile(r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded", async \(\) => \{\s*'
                     r'const diagrams = document\.querySelectorAll\("\.jp-Mermaid.*?</script>', re.S)


def _prune(nav, docs_dir: Path):
    out = []
    for item in nav:
        if isinstance(item, str):
            if (docs_dir / item).exists():
                out.append(item)
        elif isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                value = _prune(value, docs_dir)
                if value:
                    out.append({title: value})
            elif (docs_dir / value).exists():
                out.append(item)
    return out


def on_config(config, **kwargs):
    config["nav"] = _prune(config["nav"], Path(config["docs_dir"]))
    return config


MATHJAX_CONFIG = """<script>
window.MathJax = {
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true},
  // jupyter-server-mathjax ships the STIX-Web fonts only; its blank probe font would be an about:blank URL
  "HTML-CSS": {availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null,
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  messageStyle: "none",
};
</script>"""


SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|obj|exc):(<code>)~?")  # docstrings' cross-reference roles


def on_post_page(output, page, config, **kwargs):
    output = output.replace("<head>", "<head>\n" + MATHJAX_CONFIG, 1)
    output = SPHINX_ROLE.sub(r"\1", output)
    return MERMAID.sub("", output)

// MathJax 2 (bundled under assets/mathjax): $…$ in the notebooks, \(…\) from arithmatex in the pages.
// Notebook pages load MathJax with their own configuration first; then this one is not needed.
if (!window.MathJax) {
  window.MathJax = {
    tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
              processEscapes: true},
    messageStyle: "none",
  };
}

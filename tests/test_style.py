"""The one palette and the display names (creamviz.figures.style)."""

from creamviz.figures.style import METHOD_COLORS, display_name, method_color, scaling_color


def test_method_colours_are_fixed_and_distinct():
    # CREAM red, PoSE blue, RandPos purple, whatever the order or decoration of the label
    assert method_color("cream") == method_color("CREAM + YaRN", 5) == method_color("cream (step 50)", 2) == "#d62728"
    assert method_color("pose") == method_color("pose + YaRN", 0) == method_color("PoSE", 3) == "#1f77b4"
    assert method_color("randpos", 0) == "#9467bd"
    assert len({METHOD_COLORS[m] for m in ("cream", "pose", "randpos", "contiguous", "base")}) == 5
    # anything else: never a method's colour
    others = {method_color(f"L{i} H0", i) for i in range(12)}
    assert not others & set(METHOD_COLORS.values())
    # a label that merely contains a method's letters is not that method
    assert method_color("creamy", 0) != METHOD_COLORS["cream"] and method_color("poser", 0) != METHOD_COLORS["pose"]


def test_display_names():
    assert [display_name(n) for n in ("cream", "pose", "randpos", "cream-sigma1", "base")] == \
        ["CREAM", "PoSE", "RandPos", "CREAM σ = 1", "untuned base"]
    assert display_name("cream-sigma1-vs-cream") == "CREAM σ = 1 − CREAM"
    assert display_name("cream + YaRN") == "CREAM + YaRN" and display_name("pose (mean of 2 seeds)") == "PoSE (mean of 2 seeds)"
    assert display_name("L0 H3") == "L0 H3" and display_name("pre-training") == "pre-training"


def test_scaling_colour_does_not_depend_on_order():
    assert scaling_color("yarn θ'") == scaling_color("yarn θ' × attention factor² (1.44)") != scaling_color("linear θ'")

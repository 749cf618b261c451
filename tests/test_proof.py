"""creamviz.proof: the solver's encoding agrees with brute force, its proofs go through, its
counterexamples are real, and nothing else in creamviz imports z3."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from creamviz import proof
from creamviz import theorem as th
from creamviz.coverage import relative_distances

ROOT = Path(__file__).resolve().parents[1]
needs_z3 = pytest.mark.skipif(not proof.available(), reason="z3-solver is not installed (pip install creamviz[proof])")
MAX_SECONDS = 60  # each claim must be decided within a minute on one CPU core


def small_layouts(max_n=8):
    """Every valid layout with 3 <= N <= max_n and N < L <= 4N (every split on both sides of its
    L* <= 4N - 8), grouped by configuration: [(config, [Layout, ...]), ...]."""
    out = []
    for big_n in range(3, max_n + 1):
        for big_l in range(big_n + 1, 4 * big_n + 1):
            for h in range(1, big_n - 1):
                for t in range(1, big_n - h):
                    m = big_n - h - t
                    out.append(((big_n, big_l, h, t),
                                [proof.Layout(big_n, big_l, h, t, s) for s in range(h, big_l - t - m + 1)]))
    return out


def pair_sets(ids, h, m):
    """Brute force: the distances p[i] - p[j] (i >= j) of one id vector, by the pair of segments
    that i and j fall in (index ranges, not intervals)."""
    seg = ["head"] * h + ["middle"] * m + ["tail"] * (len(ids) - h - m)
    sets = {k: set() for k in ("within head", "within middle", "within tail", "head–middle", "middle–tail",
                               "head–tail")}
    for i in range(len(ids)):
        for j in range(i + 1):
            key = f"within {seg[i]}" if seg[i] == seg[j] else f"{seg[j]}–{seg[i]}"
            sets[key].add(ids[i] - ids[j])
    return sets


def brute_disjoint(sets):
    """The four classes (within, HM, MT, HT) share no distance — from the pair sets alone."""
    four = [sets["within head"] | sets["within middle"] | sets["within tail"], sets["head–middle"],
            sets["middle–tail"], sets["head–tail"]]
    return all(not (four[a] & four[b]) for a in range(4) for b in range(a + 1, 4))


# --------------------------------------------------------------------------- the proofs
@pytest.fixture(scope="module")
def results():
    return proof.prove_all()


@needs_z3
def test_every_claim_is_proved_for_unbounded_sizes(results):
    for spec in proof.CLAIMS:
        r = results[spec.key]
        assert r.verdict == spec.status == "proved", proof.describe_result(r)
        assert r.counterexample is None
        assert r.seconds < MAX_SECONDS, (spec.key, r.seconds)
        assert all(o.verdict in ("proved", "found") for o in r.obligations)
    # every quantifier-free obligation of claims 1-6 is among the proved ones
    z3 = pytest.importorskip("z3")
    idents = set(proof._obligations(z3, proof._layout_terms(z3)))
    proved = {o.name for spec in proof.CLAIMS for o in results[spec.key].obligations}
    assert idents <= proved


@needs_z3
def test_refuted_variants_come_with_counterexamples_that_brute_force_confirms(results):
    for spec in proof.VARIANTS:
        r = results[spec.key]
        assert r.verdict == spec.status == "refuted" and r.seconds < MAX_SECONDS
        assert r.corrected
    # the paper's constant as the maximum, for L >= L*: the maximum differs, at a maximiser
    lay = results["paper_constant"].counterexample
    a = th.audit(lay.train_len, lay.target_len, lay.head_len, lay.tail_len, brute_force=True)
    assert a.brute_force and lay.target_len >= a.min_target_len
    assert a.max_span != a.paper_value and a.paper_value - a.max_span == 2
    assert lay.mid_start in a.maximisers.tolist()
    # the "iff" for every L: a maximal placement where neither group holds
    lay = results["iff_every_length"].counterexample
    a = th.audit(lay.train_len, lay.target_len, lay.head_len, lay.tail_len, brute_force=True)
    assert not a.iff_holds and lay.mid_start in a.maximisers.tolist()
    assert not th.conditions_hold(lay.train_len, lay.target_len, lay.head_len, lay.tail_len, lay.mid_start)
    assert lay.mid_start in a.counterexample_kinds["max_without_conditions"].tolist()
    # claim 4's example below L*: the same kind, with L < L*
    lay = results["4"].example
    a = th.audit(lay.train_len, lay.target_len, lay.head_len, lay.tail_len, brute_force=True)
    assert lay.target_len < a.min_target_len and not a.iff_holds
    assert lay.mid_start in a.counterexample_kinds["max_without_conditions"].tolist()
    # and the id vector the figure draws has that |D_r|
    assert len(relative_distances(np.array(lay.position_ids()))) == a.max_span


@needs_z3
def test_premises_are_satisfiable_so_no_proof_is_vacuous():
    """Every hypothesis the obligations assume can be met by a valid layout: asking to prove its
    negation must fail with a counterexample (else "proved" could follow from contradictory premises)."""
    z3 = pytest.importorskip("z3")
    t = proof._layout_terms(z3)
    for premise in (z3.BoolVal(True), t.L >= t.min_target_len, t.L < t.min_target_len, t.L >= 4 * t.N - 8,
                    z3.And(t.L_h == 1, t.L_t == 1), t.conditions, z3.Not(t.conditions)):
        ob = proof._check(z3, "premise", "", z3.Not(premise), t)
        assert ob.verdict == "refuted", premise
        lay = ob.layout
        assert th.placements(lay.train_len, lay.target_len, lay.head_len, lay.tail_len).size > 0


@needs_z3
def test_a_wrong_encoding_is_refused(monkeypatch):
    """Shift one endpoint of the head–middle interval: claim 0 must fail, with a layout where brute
    force shows the shifted interval claims a distance no pair has (or misses one)."""
    good = proof._six

    def shifted(big_l, head_len, mid_len, tail_len, mid_start, mid_end):
        six = good(big_l, head_len, mid_len, tail_len, mid_start, mid_end)
        six[3] = (six[3][0], six[3][1] + 1)  # head–middle one too long
        return six

    monkeypatch.setattr(proof, "_six", shifted)
    r = proof.claim_0()
    assert r.verdict == "refuted"
    lay = r.counterexample
    ids = np.array(lay.position_ids())
    encoded = set()
    for lo, hi in shifted(lay.target_len, lay.head_len, lay.mid_len, lay.tail_len, lay.mid_start, lay.mid_end):
        encoded |= set(range(lo, hi + 1))
    assert encoded != set(relative_distances(ids).tolist())
    assert proof.claim_2().verdict == "refuted"  # |D_r| = bound no longer tracks disjointness


# --------------------------------------------------------------------------- encoding vs brute force
@needs_z3
def test_encoding_agrees_with_brute_force_on_every_layout_up_to_n8():
    """At every valid layout with N <= 8, N < L <= 4N (13,608 layouts): the solver's terms (compiled
    from z3's own ASTs) give the brute-force |D_r|, intervals, disjointness, conditions, L*, and each
    obligation of claims 1-6 has the truth value brute force gives it."""
    groups = small_layouts(8)
    layouts = [lay for _, lays in groups for lay in lays]
    assert len(layouts) == 13_608
    enc = proof.encoding_at(layouts)
    k = 0
    for (big_n, big_l, h, t), lays in groups:
        a = th.audit(big_n, big_l, h, t, brute_force=True)  # |D_r| from all pairs of the real ids
        lstar = th.min_target_len(big_n, h, t)
        bound, paper = th.upper_bound(big_n, big_l, h, t), th.paper_value(big_n, big_l, h, t)
        exclusive = th.paper_value(big_n, big_l, h, t, middle_end="exclusive")
        witness = int(enc["witness"][k])  # the same for every placement of this configuration
        assert (enc["witness"][k:k + len(lays)] == witness).all()
        feasible = a.mid_starts.tolist()
        w_size = a.spans[feasible.index(witness)] if witness in feasible else None
        for lay in lays:
            ids = lay.position_ids()
            sets = pair_sets(ids, h, lay.mid_len)
            count = a.spans[lay.mid_start - h]
            assert count == len(relative_distances(np.array(ids)))
            # the encoded quantities
            assert enc["valid"][k]
            assert enc["span_size"][k] == count, lay
            six = [(enc[f"six_lo{c}"][k], enc[f"six_hi{c}"][k]) for c in range(6)]
            for (lo, hi), name in zip(six, proof.INTERVAL_NAMES, strict=True):
                assert set(range(lo, hi + 1)) == sets[name], (lay, name)
            pieces = [(enc[f"piece_lo{c}"][k], enc[f"piece_hi{c}"][k]) for c in range(6)]
            covered = [set(range(lo, hi + 1)) for lo, hi in pieces]
            assert set().union(*covered) == set().union(*sets.values())
            assert sum(len(c) for c in covered) == count  # disjoint pieces
            disjoint = brute_disjoint(sets)
            cond = bool(th.conditions_hold(big_n, big_l, h, t, lay.mid_start))
            assert enc["disjoint"][k] == disjoint
            assert enc["conditions"][k] == cond
            assert enc["upper_bound"][k] == bound and enc["paper_value"][k] == paper
            assert enc["min_target_len"][k] == lstar
            # each obligation, as the solver evaluates it, against its brute-force truth value
            above = big_l >= lstar
            is_max = count == a.max_span
            brute = {
                "1a": count <= big_l,
                "1b": count <= bound,
                "2": (count == bound) == disjoint,
                "3": cond == disjoint,
                "4a": not above or w_size == bound,
                "4b": not above or (count == bound) == cond,
                "4c": above or not cond,
                "5a": count < paper and count < exclusive,
                "5b": not above or (count <= paper - 2 and w_size == paper - 2),
                "5c": above or count < paper - 2,
                "6a": big_l < 4 * big_n - 8 or above,
                "6b": not (h == 1 and t == 1) or lstar == 4 * big_n - 8,
            }
            for ident, truth in brute.items():
                assert enc[f"obligation_{ident}"][k] == truth, (lay, ident)
            # and what the obligations are for: above L* the maximal placements are the conditions'
            if above:
                assert is_max == cond and a.max_span == bound
            k += 1
        assert a.iff_holds == (big_l >= lstar)
    assert k == len(layouts)


@needs_z3
def test_numpy_evaluation_is_z3s_own():
    """The compiled evaluator gives what z3.simplify gives, term by term, on a spread of layouts
    (including large ones, where nothing is small)."""
    layouts = [lay for _, lays in small_layouts(8) for lay in lays][::53]
    layouts += [proof.Layout(4096, 32768, 32, 32, 9000), proof.Layout(4096, 8192, 1365, 1365, 3000),
                proof.Layout(1000, 1001, 1, 998, 1)]
    fast, slow = proof.encoding_at(layouts), proof.encoding_at(layouts, engine="z3")
    assert set(fast) == set(slow)
    for name in fast:
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)
    assert fast["span_size"][-3] == th.spans(4096, 32768, 32, 32, 9000)  # closed form at N = 4096


@needs_z3
def test_encoding_agrees_with_the_closed_form_on_random_large_layouts():
    """Beyond brute force's reach: 3,000 random layouts with N <= 5,000 and L <= 40,000, encoded |D_r|
    against theorem.spans (the closed form, itself checked against brute force in test_theorem)."""
    rng = np.random.default_rng(0)
    layouts = []
    while len(layouts) < 3000:
        big_n = int(rng.integers(3, 5001))
        big_l = int(rng.integers(big_n + 1, 8 * big_n + 2))
        h = int(rng.integers(1, big_n - 1))
        t = int(rng.integers(1, big_n - h))
        m = big_n - h - t
        layouts.append(proof.Layout(big_n, big_l, h, t, int(rng.integers(h, big_l - t - m + 1))))
    enc = proof.encoding_at(layouts)
    closed = [int(th.spans(lay.train_len, lay.target_len, lay.head_len, lay.tail_len, lay.mid_start))
              for lay in layouts]
    np.testing.assert_array_equal(enc["span_size"], closed)
    np.testing.assert_array_equal(enc["span_size"], [proof.distance_intervals(lay).span_size for lay in layouts])
    for ident in ("1a", "1b", "2", "3", "4a", "4b", "4c", "5a", "5b", "5c", "6a", "6b"):
        assert enc[f"obligation_{ident}"].all(), ident


# --------------------------------------------------------------------------- plain parts
def test_distance_intervals_against_brute_force():
    for (big_n, big_l, h, t), lays in small_layouts(6):
        for lay in lays:
            d = proof.distance_intervals(lay)
            sets = pair_sets(lay.position_ids(), h, lay.mid_len)
            for name, (lo, hi) in d.intervals.items():
                assert set(range(lo, hi + 1)) == sets[name]
            assert d.span_size == len(relative_distances(np.array(lay.position_ids())))
            assert sum(hi - lo + 1 for lo, hi in d.covered) == d.span_size
            assert (not d.overlaps) == brute_disjoint(sets)
            assert d.upper_bound == th.upper_bound(big_n, big_l, h, t)
            assert d.conditions == bool(th.conditions_hold(big_n, big_l, h, t, lay.mid_start))


def test_fig_layout_intervals():
    from creamviz.figures import fig_layout_intervals

    d = proof.distance_intervals(proof.Layout(4, 5, 2, 1, 2))  # maximal (|D_r| = L) without the conditions
    fig = fig_layout_intervals(d)
    names = [tr.name for tr in fig.data]
    assert {"head", "middle", "tail", "head–middle", "middle–tail", "head–tail"} <= set(names)
    overlap = [tr for tr in fig.data if tr.name and tr.name.startswith("overlap")]
    assert len(overlap) == len(d.overlaps) == 2
    assert [tuple(tr.x)[:2] for tr in overlap] == [(0.5, 1.5), (1.5, 2.5)]  # d = 1 and d = 2 counted twice
    union = [tr for tr in fig.data if tr.name and tr.name.startswith("D_r")]
    assert sum(tr.x[0] for tr in union) == d.span_size == 5
    big = fig_layout_intervals(proof.distance_intervals(proof.Layout(200, 10**9, 10, 20, 300)))
    assert not any(tr.type == "scatter" and tr.mode == "markers+text" for tr in big.data)  # no marker per id
    assert any(tr.type == "scatter" and tr.mode == "markers+text" for tr in fig.data)


def test_bad_input():
    with pytest.raises(ValueError, match="key="):
        proof.prove("7")
    with pytest.raises(ValueError, match="layouts must not be empty"):
        proof.encoding_at([])
    with pytest.raises(ValueError, match="engine="):
        proof.encoding_at([proof.Layout(4, 5, 1, 1, 1)], engine="cvc5")
    with pytest.raises(ValueError, match="mid_start=0"):
        proof.distance_intervals(proof.Layout(4, 5, 1, 1, 0))
    with pytest.raises(ValueError, match="tail_len=3"):
        proof.distance_intervals(proof.Layout(4, 5, 1, 3, 1))
    with pytest.raises(ValueError, match="layout must be"):
        proof.distance_intervals((4, 5, 1, 1, 1))


def test_claims_are_described_without_the_solver():
    assert [c.key for c in proof.CLAIMS] == [str(k) for k in range(7)]
    assert all(c.status == "proved" for c in proof.CLAIMS)
    assert all(v.status == "refuted" and v.corrected for v in proof.VARIANTS)


def test_nothing_imports_z3_and_proof_says_what_to_install():
    """With z3 refused by an import hook, every creamviz module still imports and none even tries
    to import z3; the solving functions then raise ImportError naming the extra."""
    code = textwrap.dedent("""
        import importlib, pkgutil, sys

        tried = []

        class RefuseZ3:
            def find_spec(self, name, path=None, target=None):
                if name == "z3" or name.startswith("z3."):
                    tried.append(name)
                    raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)")
                return None

        sys.meta_path.insert(0, RefuseZ3())
        import creamviz
        names = [m.name for m in pkgutil.walk_packages(creamviz.__path__, "creamviz.")]
        for name in names:
            importlib.import_module(name)
        assert "creamviz.proof" in names and "creamviz.widgets.theorem" in names
        assert tried == [], tried
        assert not any(m == "z3" or m.startswith("z3.") for m in sys.modules)
        from creamviz import proof
        from creamviz.widgets.theorem import proof_status_text
        assert "Proved for every N and L" in proof_status_text()
        assert not proof.available() and tried == ["z3"]
        try:
            proof.claim_1()
        except ImportError as err:
            assert "creamviz[proof]" in str(err)
        else:
            raise AssertionError("claim_1 ran without z3")
        print("ok", len(names))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


def test_explorer_says_what_is_proved_and_what_is_audited(tmp_path):
    import ipywidgets as W

    from creamviz.widgets.theorem import TheoremExplorer, proof_status_text

    text = proof_status_text()
    for spec in proof.CLAIMS + proof.VARIANTS:
        assert spec.title in text
    assert "Only audited" in text
    ex = TheoremExplorer(train_len=12, target_len=60, head_len=2, tail_len=3)

    def htmls(widget):
        yield from ([widget.value] if isinstance(widget, W.HTML) else [])
        for child in getattr(widget, "children", ()):
            yield from htmls(child)

    shown = [v for v in htmls(ex.widget) if "Proved vs audited" in v]
    assert len(shown) == 1 and "claims 0–6" in shown[0]
    ex.set_params(head_len=4)  # a redraw leaves the statement as it is
    assert [v for v in htmls(ex.widget) if "Proved vs audited" in v] == shown
    assert "Proved for every N and L" in ex.export_html(tmp_path / "t.html").read_text()

"""creamviz.rope against transformers' own rotary module, hand-derived values and brute force."""

import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from creamviz import coverage, rope
from creamviz.models import load_config, load_model
from creamviz.samplers import make_sampler

FACTOR = 8
SMOL = dict(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, num_hidden_layers=30,
            intermediate_size=1536, max_position_embeddings=8192, vocab_size=49152)  # SmolLM2-135M
SMOL_THETA = 100000.0
LONGROPE = {  # any positive per-pair factors will do: LongRoPE searches them per model
    32: (np.linspace(1.0, 1.5, 16).tolist(), np.linspace(1.0, 12.0, 16).tolist()),
    64: (np.linspace(1.0, 1.5, 32).tolist(), np.linspace(1.0, 12.0, 32).tolist()),
}


def smol_config(rope_parameters=None, max_position_embeddings=8192):
    """SmolLM2-135M's config, written out here (not through creamviz)."""
    params = rope_parameters or {"rope_type": "default", "rope_theta": SMOL_THETA}
    return LlamaConfig(**{**SMOL, "max_position_embeddings": max_position_embeddings}, rope_parameters=params)


def tiny_config(rope_parameters, max_position_embeddings):
    cfg = load_config("tiny")  # the shipped config.json, unscaled
    cfg.rope_parameters = rope_parameters
    cfg.max_position_embeddings = max_position_embeddings
    return cfg


def hand_configs(model: str, scaling: str):
    """(config transformers runs, N, d/2) for a scaling, the rope_parameters dict written by hand."""
    big_n, theta, half = (256, 10000.0, 16) if model == "tiny" else (8192, SMOL_THETA, 32)
    big_l = FACTOR * big_n
    params = {"rope_type": scaling, "rope_theta": theta, "factor": float(FACTOR)}
    max_pos = big_l
    if scaling in ("yarn", "llama3", "longrope"):
        params["original_max_position_embeddings"] = big_n
    if scaling == "dynamic":
        max_pos = big_n  # transformers' dynamic NTK reads N from max_position_embeddings
    if scaling == "llama3":
        params.update(low_freq_factor=1.0, high_freq_factor=4.0)
    if scaling == "longrope":
        params["short_factor"], params["long_factor"] = LONGROPE[2 * half]
    if scaling == "default":
        params, max_pos = {"rope_type": "default", "rope_theta": theta}, big_n
    cfg = tiny_config(params, max_pos) if model == "tiny" else smol_config(params, max_pos)
    return cfg, big_n, half


def module_frequencies(config, seq_len):
    """What the model's rotary module holds after a forward pass over positions 0 .. seq_len - 1
    (dynamic / longrope recompute here, exactly as during training and generation)."""
    emb = LlamaRotaryEmbedding(config)
    with torch.no_grad():
        emb(torch.zeros(1), torch.arange(seq_len)[None])
    return emb.inv_freq.clone(), emb.attention_scaling


def creamviz_spectrum(model, scaling, **kw):
    factor = None if scaling == "default" else FACTOR
    kw = dict(kw)
    if scaling == "longrope":
        half = 16 if model == "tiny" else 32
        kw["short_factor"], kw["long_factor"] = LONGROPE[2 * half]
    source = model if model == "tiny" else smol_config()
    return rope.rope_spectrum(source, None if scaling == "default" else scaling, factor, **kw)


# --------------------------------------------------------------------------- transformers' own values
@pytest.mark.parametrize("model", ["tiny", "smollm2-135m"])
@pytest.mark.parametrize("scaling", list(rope.SCALINGS))
def test_frequencies_equal_transformers_module(model, scaling):
    """inv_freq and attention factor equal those of transformers' LlamaRotaryEmbedding built from a
    hand-written config, after a forward pass over the whole target length L."""
    spec = creamviz_spectrum(model, scaling)
    cfg, big_n, half = hand_configs(model, scaling)
    big_l = big_n if scaling == "default" else FACTOR * big_n
    assert (spec.train_len, spec.target_len, spec.rotary_dim) == (big_n, big_l, 2 * half)
    inv_freq, attention = module_frequencies(cfg, big_l)
    np.testing.assert_array_equal(spec.inv_freq, inv_freq.double().numpy())
    assert spec.attention_factor == attention
    base, _ = module_frequencies(hand_configs(model, "default")[0], big_n)
    np.testing.assert_array_equal(spec.base_inv_freq, base.double().numpy())


@pytest.mark.parametrize("scaling", ["linear", "yarn", "dynamic"])
def test_tiny_equals_load_model(scaling):
    """The explorer's frequencies are the ones a fine-tune of the shipped tiny base runs with."""
    model = load_model("tiny", rope=scaling, factor=FACTOR)
    emb = model.model.rotary_emb
    with torch.no_grad():  # a CREAM window: N tokens whose ids reach L
        emb(torch.zeros(1), torch.tensor([[0, 1, 2, 1000, 1500, FACTOR * 256 - 1]]))
    spec = rope.rope_spectrum("tiny", scaling, FACTOR)
    np.testing.assert_array_equal(spec.inv_freq, emb.inv_freq.double().numpy())
    assert spec.attention_factor == emb.attention_scaling
    assert spec.scale[-1] > FACTOR - 1e-3  # every type slows the slowest pair at least by the factor at L
    if scaling == "dynamic":  # N stays in max_position_embeddings, where transformers' dynamic NTK reads it
        assert model.config.max_position_embeddings == 256


@pytest.mark.parametrize("model", ["tiny", "smollm2-135m"])
def test_hand_derived_values(model):
    """Closed forms from the RoPE / PI / NTK / YaRN / Llama 3.1 / LongRoPE definitions."""
    big_n, theta, half = (256, 10000.0, 16) if model == "tiny" else (8192, SMOL_THETA, 32)
    d = 2 * half
    i = np.arange(half)
    base = theta ** (-2 * i / d)
    default = creamviz_spectrum(model, "default")
    np.testing.assert_allclose(default.inv_freq, base, rtol=1e-6)
    assert default.attention_factor == 1.0 and set(default.regions) == {"kept"}
    linear = creamviz_spectrum(model, "linear")
    np.testing.assert_allclose(linear.scale, FACTOR, rtol=1e-6)
    assert set(linear.regions) == {"interpolated"}
    # dynamic NTK at seq_len = L: base theta * (factor * L / N - (factor - 1)) ** (d / (d - 2))
    dyn = creamviz_spectrum(model, "dynamic")
    grown = theta * (FACTOR * FACTOR - (FACTOR - 1)) ** (d / (d - 2))
    np.testing.assert_allclose(dyn.inv_freq, grown ** (-2 * i / d), rtol=1e-5)
    at_n = creamviz_spectrum(model, "dynamic", seq_len=big_n)  # no change up to N
    np.testing.assert_allclose(at_n.inv_freq, base, rtol=1e-6)
    # YaRN: pairs with more than beta_fast = 32 turns in N kept, fewer than beta_slow = 1 divided
    yarn = creamviz_spectrum(model, "yarn")
    turns = big_n * base / (2 * np.pi)
    np.testing.assert_allclose(yarn.scale[turns > 64], 1.0, rtol=1e-6)  # margin: the ramp's ends are floored/ceiled
    np.testing.assert_allclose(yarn.scale[turns < 0.5], FACTOR, rtol=1e-6)
    assert yarn.attention_factor == pytest.approx(0.1 * math.log(FACTOR) + 1)
    # Llama 3.1: wavelength < N / 4 kept, > N divided by the factor, smooth in between
    l3 = creamviz_spectrum(model, "llama3")
    wl = 2 * np.pi / base
    np.testing.assert_allclose(l3.scale[wl < big_n / 4], 1.0, rtol=1e-6)
    np.testing.assert_allclose(l3.scale[wl > big_n], FACTOR, rtol=1e-6)
    mid = (wl >= big_n / 4) & (wl <= big_n)
    smooth = (big_n / wl[mid] - 1) / (4 - 1)
    np.testing.assert_allclose(l3.inv_freq[mid], (1 - smooth) * base[mid] / FACTOR + smooth * base[mid], rtol=1e-5)
    # LongRoPE: 1 / (ext_i * theta^(2i/d)), long factors beyond N, short ones up to N
    short, long = (np.array(v) for v in LONGROPE[d])
    lr = creamviz_spectrum(model, "longrope")
    np.testing.assert_allclose(lr.inv_freq, base / long, rtol=1e-5)
    np.testing.assert_allclose(creamviz_spectrum(model, "longrope", seq_len=big_n).inv_freq, base / short, rtol=1e-5)
    assert lr.attention_factor == pytest.approx(math.sqrt(1 + math.log(FACTOR) / math.log(big_n)))


def test_presets_and_quantities():
    smol = rope.rope_spectrum("smollm2-135m", "yarn", 4)
    spelled = rope.rope_spectrum(smol_config(), "yarn", 4)
    np.testing.assert_array_equal(smol.inv_freq, spelled.inv_freq)
    llama = rope.rope_spectrum("llama2-7b", "linear", 8)
    assert (llama.rotary_dim, llama.train_len, llama.target_len, llama.rope_theta) == (128, 4096, 32768, 10000.0)
    np.testing.assert_allclose(llama.wavelength, 2 * np.pi * FACTOR / llama.base_inv_freq)
    np.testing.assert_allclose(llama.rotations(32768), 32768 / llama.wavelength)
    np.testing.assert_allclose(llama.rotations(4096, base=True), 4096 * llama.base_inv_freq / (2 * np.pi))
    # under linear x8 every pair turns over L exactly as much as it did over N in pre-training
    np.testing.assert_allclose(llama.rotations(32768), llama.rotations(4096, base=True), rtol=1e-6)
    assert set(smol.boundaries.values()) == {8192 / 32, 8192 / 1}
    # overrides: N, base theta, beta
    custom = rope.rope_spectrum("tiny", "yarn", 4, train_len=512, rope_theta=500.0, beta_fast=16, beta_slow=2)
    cfg, _, _ = hand_configs("tiny", "default")
    cfg.rope_parameters = {"rope_type": "yarn", "rope_theta": 500.0, "factor": 4.0, "beta_fast": 16.0,
                           "beta_slow": 2.0, "original_max_position_embeddings": 512}
    cfg.max_position_embeddings = 2048
    inv_freq, attention = module_frequencies(cfg, 2048)
    np.testing.assert_array_equal(custom.inv_freq, inv_freq.double().numpy())
    assert (custom.train_len, custom.target_len, custom.rope_theta) == (512, 2048, 500.0)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(scaling="ntk", factor=2), "scaling='ntk' is not supported; valid: None, 'default', 'linear', 'dynamic', "
                                    "'yarn', 'llama3', 'longrope'"),
    (dict(scaling="yarn", factor=2, gamma=3), r"gamma do not apply to scaling='yarn' \(unknown: gamma\); it takes "
                                              "beta_fast, beta_slow"),
    (dict(scaling="llama3", factor=2, beta_slow=3), "beta_slow do not apply to scaling='llama3'"),
    (dict(scaling="linear", factor=0.5), "factor=0.5"),
    (dict(scaling="linear"), "factor=None"),
    (dict(scaling=None, factor=4), "factor=4"),
    (dict(scaling="yarn", factor=4, beta_fast=1, beta_slow=2), "beta_fast=1 must exceed"),
    (dict(scaling="linear", factor=4, beta_fast=8), "beta_fast do not apply"),
    (dict(scaling="longrope", factor=4), "short_factor must be 16 positive"),
    (dict(scaling="longrope", factor=4, short_factor=[1.0] * 16, long_factor=[0.0] * 16), "long_factor"),
    (dict(scaling="llama3", factor=4, low_freq_factor=4, high_freq_factor=1), "high_freq_factor=1"),
    (dict(scaling="yarn", factor=4, train_len=1), "train_len"),
    (dict(scaling="yarn", factor=4, rope_theta=-3.0), "rope_theta"),
    (dict(scaling="dynamic", factor=4, seq_len=0), "seq_len"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rope.rope_spectrum("tiny", **kwargs)


def test_bad_model():
    with pytest.raises(ValueError, match="model='nope'"):
        rope.rope_spectrum("nope")


# --------------------------------------------------------------------------- long-term decay
def brute_decay(theta, r):
    """(2/d) sum_j |sum_{k<j} e^{i r theta_k}| with plain loops."""
    total = 0.0
    for j in range(1, len(theta) + 1):
        re = sum(math.cos(r * theta[k]) for k in range(j))
        im = sum(math.sin(r * theta[k]) for k in range(j))
        total += math.hypot(re, im)
    return total / len(theta)


def test_decay_equals_brute_force():
    spec = creamviz_spectrum("tiny", "yarn")
    distances = np.array([0, 1, 2, 7, 50, 255, 256, 1023, 2047])
    got = rope.logit_decay(spec.inv_freq, distances)
    want = [brute_decay(spec.inv_freq, r) for r in distances]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == pytest.approx((len(spec.inv_freq) + 1) / 2)  # r = 0: mean of 1 .. d/2
    scaled = rope.logit_decay(spec.inv_freq, distances, attention_factor=spec.attention_factor)
    np.testing.assert_allclose(scaled, spec.attention_factor ** 2 * got)
    # chunked path = one block
    many = np.arange(0, 3000, 7)
    old = rope.DECAY_BLOCK
    try:
        rope.DECAY_BLOCK = 64
        np.testing.assert_allclose(rope.logit_decay(spec.inv_freq, many), [brute_decay(spec.inv_freq, r) for r in many])
    finally:
        rope.DECAY_BLOCK = old


@pytest.mark.parametrize("scaling", ["default", "linear", "yarn"])
def test_decay_bounds_transformers_logits(scaling):
    """RoFormer's bound holds for real RoPE logits: random q, k rotated by transformers'
    apply_rotary_pos_emb at positions m, n satisfy |q_m . k_n| <= max|h_{i+1} - h_i| * sum_j |S_j|."""
    spec = creamviz_spectrum("tiny", scaling)
    cfg, _, half = hand_configs("tiny", scaling)
    emb = LlamaRotaryEmbedding(cfg)
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 2 * half, generator=gen), torch.randn(1, 1, 1, 2 * half, generator=gen)
    m, n = torch.tensor([[5, 300, 2047, 1500]]), torch.tensor([[0, 299, 0, 1000]])
    with torch.no_grad():
        cos_m, sin_m = emb(q, m)
        cos_n, sin_n = emb(q, n)
        qm, _ = apply_rotary_pos_emb(q.expand(1, 1, 4, -1), q.expand(1, 1, 4, -1), cos_m, sin_m)
        _, kn = apply_rotary_pos_emb(k.expand(1, 1, 4, -1), k.expand(1, 1, 4, -1), cos_n, sin_n)
    logits = (qm * kn).sum(-1).double().numpy().ravel()  # (4,)
    qc = (q[..., :half] + 1j * q[..., half:]).numpy().ravel().astype(np.complex128)  # pairs (i, i + d/2)
    kc = (k[..., :half] + 1j * k[..., half:]).numpy().ravel().astype(np.complex128)
    h = np.append(qc * kc.conj(), 0.0)
    r = (m - n).numpy().ravel()
    exact = np.array([(h[:-1] * np.exp(1j * d * spec.inv_freq)).sum().real for d in r]) * spec.attention_factor ** 2
    np.testing.assert_allclose(logits, exact, rtol=1e-4, atol=1e-4)
    bound = np.abs(np.diff(h)).max() * half * rope.logit_decay(spec.inv_freq, r, attention_factor=spec.attention_factor)
    assert np.all(np.abs(logits) <= bound + 1e-4)


def test_decay_distances():
    d = rope.decay_distances(32768, 1000)
    assert d[0] == 0 and d[-1] == 32768 and np.all(np.diff(d) > 0) and len(d) <= 1001
    assert np.array_equal(d[:20], np.arange(20))


# --------------------------------------------------------------------------- phase coverage
def brute_bin(r, theta, n_bins):
    """Phase bin of the angle r theta: t = r theta / 2 pi turns, bin floor(frac(t) n_bins), in plain Python."""
    turns = r * (theta / (2 * math.pi))
    return min(math.floor((turns - math.floor(turns)) * n_bins), n_bins - 1)


def brute_cells(theta, distances, n_bins):
    """{(i, b)} for every pair i and distance r, with a loop."""
    return {(i, brute_bin(r, t, n_bins)) for i, t in enumerate(theta) for r in distances}


def test_phase_index_brute_force():
    spec = creamviz_spectrum("tiny", "yarn")
    index = rope.phase_index(spec.inv_freq, 300, 24)
    for i, t in enumerate(spec.inv_freq):
        for r in (0, 1, 17, 299):
            assert index[i, r] == brute_bin(r, t, 24)
            # the same cell as the angle r theta mod 2pi, away from bin edges
            angle = math.fmod(r * t, 2 * math.pi) * 24 / (2 * math.pi)
            if abs(angle - round(angle)) > 1e-6:
                assert index[i, r] == math.floor(angle)
    old = rope.PHASE_BLOCK
    try:
        rope.PHASE_BLOCK = 500  # one pair per block
        np.testing.assert_array_equal(rope.phase_index(spec.inv_freq, 300, 24), index)
    finally:
        rope.PHASE_BLOCK = old


@pytest.mark.parametrize("method", ["cream", "pose", "randpos", "contiguous"])
def test_phase_coverage_brute_force(method):
    """Small N, L: every field against loops over samples, pairs of ids, rotary pairs and distances."""
    big_n, big_l, n, bins, dbins = 12, 96, 6, 16, 10
    spec = rope.rope_spectrum("tiny", "yarn", 8, train_len=big_n, rope_theta=50.0)
    extra = {"k": 2} if method == "cream" else {}  # the default 4 * factor does not fit N = 12
    sampler = make_sampler(method, train_len=big_n, target_len=big_l, **extra)
    ids = sampler.position_ids(n, seed=3)
    per_sample = [set(coverage.relative_distances(row).tolist()) for row in ids]
    freq = np.array([sum(r in s for s in per_sample) / n for r in range(big_l)])
    np.testing.assert_allclose(rope.sampler_distance_frequency(sampler, n, seed=3), freq)
    cov = rope.phase_coverage(spec, freq, method=method, n_bins=bins, n_distance_bins=dbins)
    theta = spec.inv_freq

    def cell(i, r):
        return brute_bin(r, theta[i], bins)

    trained = np.zeros((len(theta), bins))
    needed = np.zeros((len(theta), bins), dtype=int)
    for i in range(len(theta)):
        for r in range(big_l):
            needed[i, cell(i, r)] += 1
            for s in per_sample:
                trained[i, cell(i, r)] += (r in s) / n
    np.testing.assert_array_equal(cov.needed, needed)
    np.testing.assert_allclose(cov.trained, trained, atol=1e-12)
    exercised = brute_cells(theta, sorted(set().union(*per_sample)), bins)
    assert {tuple(c) for c in np.argwhere(cov.exercised)} == exercised
    need = brute_cells(theta, range(big_l), bins)
    want_fraction = [len({c for c in need & exercised if c[0] == i}) / len({c for c in need if c[0] == i})
                     for i in range(len(theta))]
    np.testing.assert_allclose(cov.covered_fraction, want_fraction)
    edges = np.linspace(0, big_l, dbins + 1).round().astype(int)
    for i in range(len(theta)):
        for j in range(dbins):
            rs = range(edges[j], edges[j + 1])
            assert cov.familiar[i, j] == pytest.approx(np.mean([(i, cell(i, r)) in exercised for r in rs]))
            rates = [trained[i, cell(i, r)] / needed[i, cell(i, r)] for r in rs]
            assert cov.rate_map[i, j] == pytest.approx(np.mean(rates))
    assert cov.unseen.sum() == len(need - exercised)
    np.testing.assert_allclose(cov.rate, trained / np.where(needed > 0, needed, np.nan))


def test_pretraining_and_contiguous_coverage():
    """Hand-derived: without scaling, a pair that turns less than once in L needs angles [0, L theta)
    and pre-training (r < N) saw only [0, N theta): about N / L of the cells; linear x8 brings every
    needed angle back into what pre-training produced."""
    n_bins = 256
    plain = rope.rope_spectrum("llama2-7b", train_len=4096, target_len=32768)
    pre = rope.pretraining_coverage(plain, n_bins=n_bins)
    slow = plain.rotations(32768) < 1

    def bins_up_to(length, theta):  # cells hit by the angles r theta, r < length, for a slow pair
        return np.floor((length - 1) * theta * n_bins / (2 * np.pi)) + 1

    np.testing.assert_allclose(pre.covered_fraction[slow], bins_up_to(4096, plain.inv_freq[slow]) /
                               bins_up_to(32768, plain.inv_freq[slow]))
    # a pair turning more than once in N met every phase bin in pre-training, at 64 bins; at 256 bins
    # pair 12 (theta / 2 pi ~ 3 / 106) cycles through ~106 angles only and leaves bins empty
    coarse = rope.pretraining_coverage(plain, n_bins=64)
    assert np.all(coarse.covered_fraction[plain.rotations(4096) > 1] == 1)
    assert pre.covered_fraction[12] < 0.6
    linear = rope.rope_spectrum("llama2-7b", "linear", 8)
    assert np.all(rope.pretraining_coverage(linear, n_bins=64).covered_fraction == 1)
    contiguous = rope.sampler_distance_frequency(make_sampler("contiguous", train_len=4096, target_len=32768), 1)
    cov = rope.phase_coverage(linear, contiguous, method="contiguous", n_bins=n_bins)
    # contiguous fine-tuning at linear x8 exercises r < N: a pair under one turn in L sees 1/8 of its cells
    slow = linear.rotations(32768) < 1
    np.testing.assert_allclose(cov.covered_fraction[slow], bins_up_to(4096, linear.inv_freq[slow]) /
                               bins_up_to(32768, linear.inv_freq[slow]))
    assert cov.covered_fraction[-1] < 0.2 and cov.familiar[-1, -1] == 0 and cov.familiar[0].min() == 1


def test_phase_coverage_bad_input():
    spec = rope.rope_spectrum("tiny", "linear", 2)
    cov = rope.phase_coverage(spec, np.ones(512), n_distance_bins=8)
    pairs = np.zeros(16, dtype=bool)
    pairs[[3, 9]] = True
    assert cov.rate_in(pairs, 64, 320) == pytest.approx(cov.rate_map[[3, 9]][:, 1:5].mean())  # centres 95.5 .. 287.5
    with pytest.raises(ValueError, match="at least one pair"):
        cov.rate_in(np.zeros(16, dtype=bool), 0, 512)
    with pytest.raises(ValueError, match=r"shape \(L,\) = \(512,\)"):
        rope.phase_coverage(spec, np.ones(100))
    with pytest.raises(ValueError, match="n_bins"):
        rope.phase_coverage(spec, np.ones(512), n_bins=0)
    with pytest.raises(ValueError, match=">= 0"):
        rope.phase_coverage(spec, -np.ones(512))


def test_import_does_not_load_torch():
    """creamviz.rope and the RoPE figure builders import without torch (the figures package's
    __init__ pulls other topics' modules, so figures/rope.py is loaded under a bare package)."""
    import subprocess
    import sys

    code = ("import sys, types, pathlib, creamviz, creamviz.rope\n"
            "pkg = types.ModuleType('creamviz.figures')\n"
            "pkg.__path__ = [str(pathlib.Path(creamviz.__file__).parent / 'figures')]\n"
            "sys.modules['creamviz.figures'] = pkg\n"
            "import creamviz.figures.rope\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

"""RULER's synthetic tasks verbatim (Hsieh et al., 2024; NVIDIA/RULER ``scripts/data/synthetic``),
sized in the model's own tokens.

The 11 tasks that need no external data, with RULER's templates, needle sentence, answer prefixes,
key / value kinds, depth placement and ``tokens_to_generate`` (the generation budget reserved inside
the length: prompt tokens + budget <= L, as RULER's ``max_seq_length``):

==================  ==========  ================  =====================================  ======
task                haystack    key -> value      needles / values / queries             budget
==================  ==========  ================  =====================================  ======
niah_single_1       noise       words -> numbers  1 / 1 / 1                              128
niah_single_2       essay       words -> numbers  1 / 1 / 1                              128
niah_single_3       essay       words -> uuids    1 / 1 / 1                              128
niah_multikey_1     essay       words -> numbers  4 keys, one asked                      128
niah_multikey_2     needle      words -> numbers  distractor needles fill the haystack   128
niah_multikey_3     needle      uuids -> uuids    distractor needles fill the haystack   128
niah_multivalue     essay       words -> numbers  4 values of one key, all asked         128
niah_multiquery     essay       words -> numbers  4 keys, all 4 asked                    128
vt                  noise       1 chain of 4 hops, 5-letter names, one worked example    30
cwe                 (word list) 10 most common words of a numbered list, one example     120
fwe                 (coded)     3 most frequent coded words (zeta, alpha = 2)            50
==================  ==========  ================  =====================================  ======

``qa_1`` / ``qa_2`` (SQuAD / HotpotQA documents) read a local copy of the dataset through
``datasets`` when given one (:func:`ruler_qa`); none ships with creamviz.

Where this departs from RULER's scripts, and why:

- **essay haystack**: RULER uses Paul Graham's essays, which cannot be redistributed; the "essay"
  here is the shipped CPython documentation corpus (held-out split, PSF licence), treated exactly as
  RULER treats the essays: white space collapsed, the first ``n`` words (repeated when shorter),
  split into sentences, needles inserted between sentences at depths drawn from RULER's 40 depths.
- **sentences** are split at ``.``, ``!`` or ``?`` followed by white space (RULER: NLTK's Punkt,
  which needs a downloaded model).
- **randomness**: everything is drawn once from ``numpy.random.default_rng(seed)`` before the
  haystack is sized, so the needles do not change while the size is searched; keys, values and
  distractors are drawn distinct and absent from the haystack, so every needle and every answer
  string occurs exactly once in the prompt (RULER draws with replacement and does not check).
- **words** (adjective-noun keys, CWE's word list) come from the ``wonderwords`` package's lists,
  as RULER's; an adjective and a noun are drawn independently (RULER samples the sorted set of all
  pairs: the same distribution without building 6 million strings).

The answer strings are stored ``"\\n"``-joined in ``TaskExample.answer`` (and as a list in
``meta["outputs"]``); scoring is RULER's ``string_match_all`` (``string_match_part`` for qa), see
:mod:`creamviz.tasks.scoring`. A tokenizer with a chat template gets the task text as one user turn
and the answer prefix after the assistant header (RULER's model templates do the same); the byte
tokenizer gets RULER's ``base`` template (the plain text).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Sequence

import numpy as np

from creamviz.tasks.common import (
    TaskExample,
    _check_length,
    _check_seed,
    check_tokenizer,
    load_corpus,
)
from creamviz.tasks.real import _fit_count, _has_chat_template, encode_chat, render_chat
from creamviz.validation import check_choice, check_real

# ----------------------------------------------------------------------------- RULER's constants
RULER_TEMPLATES = {  # scripts/data/synthetic/constants.py: template, answer prefix, tokens_to_generate
    "niah": ("Some special magic {type_needle_v} are hidden within the following text. Make sure to "
             "memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are "
             "all the special magic {type_needle_v} for {query} mentioned in the provided text?",
             " The special magic {type_needle_v} for {query} mentioned in the provided text are", 128),
    "variable_tracking": ("Memorize and track the chain(s) of variable assignment hidden in the following "
                          "text.\n\n{context}\nQuestion: Find all variables that are assigned the value "
                          "{query} in the text above.",
                          " Answer: According to the chain(s) of variable assignment in the text above, "
                          "{num_v} variables are assigned the value {query}, they are: ", 30),
    "common_words_extraction": ("Below is a numbered list of words. In these words, some appear more often "
                                "than others. Memorize the ones that appear most often.\n{context}\n"
                                "Question: What are the 10 most common words in the above list?",
                                " Answer: The top 10 words that appear most often in the list are:", 120),
    "freq_words_extraction": ("Read the following coded text and track the frequency of each coded word. "
                              "Find the three most frequently appeared coded words. {context}\nQuestion: "
                              "Do not provide any explanation. Please ignore the dots '....'. What are the "
                              "three most frequently appeared words in the above coded text?",
                              " Answer: According to the coded text above, the three most frequently "
                              "appeared words are:", 50),
    "qa": ("Answer the question based on the given documents. Only give me the answer and do not output "
           "any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question "
           "based on the given documents. Only give me the answer and do not output any other words.\n\n"
           "Question: {query}", " Answer:", 32),
}
RULER_NEEDLE = "One of the special magic {type_needle_v} for {key} is: {value}."
RULER_NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
RULER_DEPTHS = tuple(int(d) for d in np.round(np.linspace(0, 100, num=40, endpoint=True)))  # percent
RULER_DOCUMENT = "Document {i}:\n{document}"
RULER_ANSWER_SEP = "\n"  # joins the answer strings in TaskExample.answer

# scripts/synthetic.yaml: (family, args)
RULER_CONFIGS = {
    "niah_single_1": ("niah", dict(haystack="noise", k="words", v="numbers", n_k=1, n_v=1, n_q=1)),
    "niah_single_2": ("niah", dict(haystack="essay", k="words", v="numbers", n_k=1, n_v=1, n_q=1)),
    "niah_single_3": ("niah", dict(haystack="essay", k="words", v="uuids", n_k=1, n_v=1, n_q=1)),
    "niah_multikey_1": ("niah", dict(haystack="essay", k="words", v="numbers", n_k=4, n_v=1, n_q=1)),
    "niah_multikey_2": ("niah", dict(haystack="needle", k="words", v="numbers", n_k=1, n_v=1, n_q=1)),
    "niah_multikey_3": ("niah", dict(haystack="needle", k="uuids", v="uuids", n_k=1, n_v=1, n_q=1)),
    "niah_multivalue": ("niah", dict(haystack="essay", k="words", v="numbers", n_k=1, n_v=4, n_q=1)),
    "niah_multiquery": ("niah", dict(haystack="essay", k="words", v="numbers", n_k=4, n_v=1, n_q=4)),
    "vt": ("variable_tracking", dict(n_chains=1, n_hops=4)),
    "cwe": ("common_words_extraction", dict(freq_cw=30, freq_ucw=3, num_cw=10)),
    "fwe": ("freq_words_extraction", dict(alpha=2.0)),
    "qa_1": ("qa", dict(dataset="squad")),
    "qa_2": ("qa", dict(dataset="hotpotqa")),
}
RULER_SYNTHETIC = tuple(t for t in RULER_CONFIGS if not t.startswith("qa_"))  # the 11 without data
RULER_VERBATIM_TASKS = tuple(RULER_CONFIGS)
RULER_NIAH_TASKS = tuple(t for t in RULER_CONFIGS if t.startswith("niah_"))
VT_ICL_LENGTH = 500  # RULER sizes the worked variable-tracking example to 500 tokens


def ruler_budget(task: str) -> int:
    """RULER's ``tokens_to_generate`` for ``task`` (new tokens reserved inside the length)."""
    check_choice("task", task, RULER_VERBATIM_TASKS)
    return RULER_TEMPLATES[RULER_CONFIGS[task][0]][2]


# ----------------------------------------------------------------------------- draws
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@functools.lru_cache(maxsize=4)
def _wonderwords(name: str) -> tuple[str, ...]:
    """RULER's word list ``name`` (adjective / noun / verb) from the wonderwords package, sorted, unique."""
    try:
        from wonderwords.random_word import _get_words_from_text_file
    except ImportError:
        raise ImportError("RULER's word lists come from the wonderwords package: pip install 'creamviz[peers]'") from None

    return tuple(sorted(set(_get_words_from_text_file(f"{name}list.txt"))))


def _drawer(rng: np.random.Generator, kind: str) -> Callable[[], str]:
    """RULER's needle kinds: 7-digit numbers, adjective-noun words, version-4 UUIDs."""
    if kind == "numbers":
        return lambda: str(int(rng.integers(10 ** 6, 10 ** 7)))
    if kind == "words":
        adjs, nouns = _wonderwords("adjective"), _wonderwords("noun")
        return lambda: f"{adjs[int(rng.integers(len(adjs)))]}-{nouns[int(rng.integers(len(nouns)))]}"
    if kind == "uuids":
        import uuid

        return lambda: str(uuid.UUID(bytes=rng.bytes(16), version=4))
    raise ValueError(f"kind={kind!r}; valid: numbers, words, uuids")  # pragma: no cover


def _distinct(draw: Callable[[], str], n: int, avoid: str, taken: set[str]) -> list[str]:
    """``n`` draws, distinct from each other and from ``taken``, none a substring of ``avoid`` nor of
    another drawn string (so each occurs exactly once where it is placed)."""
    out: list[str] = []
    for _ in range(100 * n + 100):
        s = draw()
        if s in taken or s in avoid or any(s in o or o in s for o in taken):
            continue
        out.append(s)
        taken.add(s)
        if len(out) == n:
            return out
    raise ValueError(f"could not draw {n} distinct strings absent from the haystack")


def _essay_words(essay: Sequence[str] | None) -> list[str]:
    text = "\n".join(essay) if essay is not None else "\n".join(load_corpus("eval"))
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    if len(words) < 2:
        raise ValueError("essay holds fewer than 2 words; pass a longer text")
    return words


def _repeat(words: list[str], n: int) -> list[str]:
    """The first ``n`` words, the list repeated when shorter (RULER's rule)."""
    return (words * (n // len(words) + 1))[:n]


# ----------------------------------------------------------------------------- the prompt frame

def _frame(tokenizer, chat: bool | None):
    use_chat = _has_chat_template(tokenizer) if chat is None else bool(chat)

    def render(task_text: str, answer_prefix: str) -> str:
        return render_chat(tokenizer, task_text, answer_prefix, chat=use_chat)[0] if use_chat \
            else task_text + answer_prefix

    return use_chat, render


def _fit(tokenizer, use_chat, build: Callable[[int], str], length: int, budget: int, n_max: int,
         n_min: int, unit: str) -> tuple[int, list[int]]:
    """Largest haystack size ``n`` whose prompt plus ``budget`` new tokens fits ``length``."""
    if length - budget < 8:
        raise ValueError(f"length={length} leaves no room for a prompt after RULER's generation budget of "
                         f"{budget} tokens; valid is length >= {budget + 8}")
    n = _fit_count(build, tokenizer, use_chat, length - budget, n_max, n_min=n_min)
    return n, encode_chat(tokenizer, build(n), use_chat)


def _example(task, tokenizer, use_chat, text, ids, outputs, length, budget, depth, g, n, seed, target,
             first_answer_char, meta) -> TaskExample:
    gold_pos = len(encode_chat(tokenizer, text[:first_answer_char], use_chat)) if first_answer_char >= 0 else 0
    return TaskExample(task, text, RULER_ANSWER_SEP.join(outputs), ids, int(length), float(depth), int(g),
                       int(n), gold_pos, int(seed), target,
                       meta=dict(meta, outputs=list(outputs), budget=int(budget), chat=bool(use_chat)))


# ----------------------------------------------------------------------------- NIAH family

def ruler_niah(tokenizer, task: str, length: int, *, seed: int = 0, depth: float | None = None,
               chat: bool | None = None, essay: Sequence[str] | None = None) -> TaskExample:
    """One RULER needle-in-a-haystack prompt (``niah_single_1`` ... ``niah_multiquery``) of at most
    ``length`` tokens including RULER's 128-token generation budget.

    ``depth``: relative position in [0, 1] of the first asked needle (RULER: drawn); the other needles
    at depths drawn from RULER's 40 (essay) or at random haystack units (noise / needle)."""
    check_choice("task", task, RULER_NIAH_TASKS)
    length, seed = _check_length(length), _check_seed(seed)
    if depth is not None:
        depth = check_real("depth", depth, 0.0, 1.0)
    check_tokenizer(tokenizer)
    cfg = RULER_CONFIGS[task][1]
    template, prefix, budget = RULER_TEMPLATES["niah"]
    rng = np.random.default_rng(seed)
    use_chat, render = _frame(tokenizer, chat)
    n_k = max(cfg["n_k"], cfg["n_q"])
    essay_words = _essay_words(essay) if cfg["haystack"] == "essay" else None
    avoid = " ".join(essay_words) if essay_words is not None else RULER_NOISE
    taken: set[str] = set()
    keys = _distinct(_drawer(rng, cfg["k"]), n_k, avoid, taken)
    values = [_distinct(_drawer(rng, cfg["v"]), cfg["n_v"], avoid, taken) for _ in keys]
    needles = [(i, j, RULER_NEEDLE.format(type_needle_v=cfg["v"], key=k, value=v))
               for i, k in enumerate(keys) for j, v in enumerate(values[i])]
    needles = [needles[j] for j in rng.permutation(len(needles))]  # RULER shuffles the needles
    asked = sorted(int(i) for i in rng.choice(n_k, cfg["n_q"], replace=False))
    queries = [keys[i] for i in asked]
    outputs = [v for i in asked for v in values[i]]
    query = queries[0] if len(queries) == 1 else ", ".join(queries[:-1]) + ", and " + queries[-1]
    type_v = cfg["v"]
    if cfg["n_q"] * cfg["n_v"] == 1:  # RULER's singular form
        template = template.replace("Some", "A").replace("are all", "is").replace("are", "is")
        prefix = prefix.replace("are", "is")
        type_v = type_v[:-1]
    fractions = rng.random(len(needles))  # unit positions for noise / needle haystacks
    pct = [int(x) for x in rng.choice(RULER_DEPTHS, len(needles), replace=False)]  # essay depths
    first = next(j for j, (i, v, _) in enumerate(needles) if i == asked[0] and v == 0)
    if depth is not None:
        fractions[first] = min(depth, np.nextafter(1.0, 0.0))
        pct[first] = depth * 100
    distract_draw_k, distract_draw_v = _drawer(rng, cfg["k"]), _drawer(rng, cfg["v"])
    distractors: list[str] = []

    def more_distractors(n: int) -> None:  # the needle haystack: random needles, drawn once, in order
        while len(distractors) < n:
            k = _distinct(distract_draw_k, 1, "", taken)[0]
            v = _distinct(distract_draw_v, 1, "", taken)[0]
            distractors.append(RULER_NEEDLE.format(type_needle_v=cfg["v"], key=k, value=v))

    def context(n: int) -> tuple[str, int]:
        if cfg["haystack"] == "essay":
            sents = _SENTENCE_END.split(" ".join(_repeat(essay_words, n)).strip()) if n else []
            order = sorted(range(len(needles)), key=lambda j: (pct[j], j))
            pos = [int(len(sents) * pct[j] / 100) for j in order]
            pieces, last = [], 0
            for j, p in zip(order, pos, strict=True):
                pieces += [" ".join(sents[last:p]), needles[j][2]]
                last = p
            pieces.append(" ".join(sents[last:]))
            at = pos[order.index(first)] / max(len(sents), 1)
            return " ".join(p for p in pieces if p), at
        if cfg["haystack"] == "noise":
            units = [RULER_NOISE] * n
        else:
            more_distractors(n)
            units = list(distractors[:n])
        slots = sorted(range(len(needles)), key=lambda j: (int(fractions[j] * n), j))
        out = list(units)
        for shift, j in enumerate(slots):
            out.insert(int(fractions[j] * n) + shift, needles[j][2])
        return "\n".join(out), int(fractions[first] * n) / max(n, 1)

    def build(n: int) -> str:
        task_text = template.format(type_needle_v=type_v, context=context(n)[0], query=query)
        return render(task_text, prefix.format(type_needle_v=type_v, query=query))

    n_max = length if cfg["haystack"] != "needle" else max(1, length // 8)  # a unit is >= 1 (8) tokens
    n, ids = _fit(tokenizer, use_chat, build, length, budget, n_max, 0, "units")
    text = build(n)
    realized = context(n)[1]
    return _example(task, tokenizer, use_chat, text, ids, outputs, length, budget, realized, 0, n, seed,
                    depth, text.find(needles[first][2]),
                    {"keys": keys, "asked": asked, "haystack": cfg["haystack"],
                     "needles": [s for _, _, s in needles]})


# ----------------------------------------------------------------------------- variable tracking

def _vt_chain(rng, n_hops: int, letters: int, avoid: str, taken: set[str]) -> tuple[list[str], str, list[str]]:
    alphabet = np.array(list(string.ascii_uppercase))
    names = _distinct(lambda: "".join(alphabet[rng.integers(0, 26, size=letters)]), n_hops + 1, avoid, taken)
    value = _distinct(lambda: str(int(rng.integers(10000, 99999))), 1, avoid, taken)[0]
    chain = [f"VAR {names[0]} = {value}"] + [f"VAR {names[j + 1]} = VAR {names[j]} " for j in range(n_hops)]
    return names, value, chain


def _vt_context(chains: list[list[str]], fractions: list[np.ndarray], n: int) -> str:
    sentences = [RULER_NOISE] * n
    for chain, fr in zip(chains, fractions, strict=True):  # RULER: sorted positions, inserted in order
        positions = sorted(int(f * max(len(sentences), 1)) for f in fr)
        for j, p in enumerate(positions):
            sentences.insert(p + j, chain[j])
    return "\n".join(sentences).replace(". \n", ".\n")


def ruler_vt(tokenizer, length: int, *, seed: int = 0, chat: bool | None = None) -> TaskExample:
    """RULER variable tracking (``vt``): one chain of 4 hops (5 five-letter variables) in the noise
    haystack, a worked example (3-letter names, sized to 500 tokens) before the task; the answer
    prefix names the count. Budget 30 tokens."""
    length, seed = _check_length(length), _check_seed(seed)
    check_tokenizer(tokenizer)
    cfg = RULER_CONFIGS["vt"][1]
    template, prefix, budget = RULER_TEMPLATES["variable_tracking"]
    rng = np.random.default_rng(seed)
    use_chat, render = _frame(tokenizer, chat)
    taken: set[str] = set()
    hops, n_chains = cfg["n_hops"], cfg["n_chains"]
    icl = [_vt_chain(rng, hops, 3, RULER_NOISE, taken) for _ in range(n_chains)]
    real = [_vt_chain(rng, hops, 5, RULER_NOISE, taken) for _ in range(n_chains)]
    icl_fr = [rng.random(hops + 1) for _ in icl]
    real_fr = [rng.random(hops + 1) for _ in real]

    def icl_text(n: int) -> str:
        body = template.format(context=_vt_context([c for _, _, c in icl], icl_fr, n), query=icl[0][1],
                               num_v=hops + 1) + prefix.format(query=icl[0][1], num_v=hops + 1)
        return body + " " + " ".join(icl[0][0]) + "\n"

    n_icl = _fit_count(icl_text, tokenizer, False, VT_ICL_LENGTH, VT_ICL_LENGTH, n_min=0)
    example = icl_text(n_icl)

    def build(n: int) -> str:
        task_text = template.format(context=_vt_context([c for _, _, c in real], real_fr, n), query=real[0][1],
                                    num_v=hops + 1)
        return render(example + "\n" + task_text, prefix.format(query=real[0][1], num_v=hops + 1))

    n, ids = _fit(tokenizer, use_chat, build, length, budget, length, 0, "noise units")
    text = build(n)
    outputs = real[0][0]
    at = text.find(real[0][2][0], len(example))
    return _example("vt", tokenizer, use_chat, text, ids, outputs, length, budget,
                    at / max(len(text), 1), 0, n, seed, None, at,
                    {"value": real[0][1], "icl_names": icl[0][0], "chain": real[0][2]})


# ----------------------------------------------------------------------------- common / frequent words

def ruler_cwe(tokenizer, length: int, *, seed: int = 0, chat: bool | None = None) -> TaskExample:
    """RULER common words extraction (``cwe``): a numbered list where 10 words repeat ``freq_cw``
    times and the rest ``freq_ucw`` times (30 / 3 from L = 4096, 6 / 1 below, as RULER), one worked
    example first; name the 10 most common. Budget 120 tokens. Words: wonderwords nouns, adjectives
    and verbs (RULER's list); the example's words are disjoint from the task's."""
    length, seed = _check_length(length), _check_seed(seed)
    check_tokenizer(tokenizer)
    cfg = RULER_CONFIGS["cwe"][1]
    template, prefix, budget = RULER_TEMPLATES["common_words_extraction"]
    full = template + prefix
    rng = np.random.default_rng(seed)
    use_chat, render = _frame(tokenizer, chat)
    vocab = sorted(set(_wonderwords("noun")) | set(_wonderwords("adjective")) | set(_wonderwords("verb")))
    vocab = [vocab[i] for i in rng.permutation(len(vocab))]
    vocab = [w for w in vocab if " " not in w and not any(c.isdigit() for c in w)]
    num_cw = cfg["num_cw"]
    if length < 4096:
        shot_args, task_args = (20, 3, 1), (6, 1)
    else:
        shot_args, task_args = (40, 10, 3), (cfg["freq_cw"], cfg["freq_ucw"])
    shot_words = vocab[:shot_args[0]]
    pool = vocab[shot_args[0]:]
    order_seed = int(rng.integers(2 ** 31))

    def listing(words: list[str], common_rep: int, uncommon_rep: int) -> str:
        word_list = words[:num_cw] * common_rep + words[num_cw:] * uncommon_rep
        perm = np.random.default_rng(order_seed).permutation(len(word_list))
        return " ".join(f"{i + 1}. {word_list[j]}" for i, j in enumerate(perm))

    shot = (full.format(context=listing(shot_words, *shot_args[1:]), query="") + " "
            + " ".join(f"{i + 1}. {w}" for i, w in enumerate(shot_words[:num_cw])))

    def build(n: int) -> str:
        text = shot + "\n" + template.format(context=listing(pool[:n], *task_args), query="")
        return render(text, prefix)

    n_max = len(pool)
    n, ids = _fit(tokenizer, use_chat, build, length, budget, n_max, num_cw + 1, "words")
    text = build(n)
    outputs = pool[:num_cw]
    return _example("cwe", tokenizer, use_chat, text, ids, outputs, length, budget, 0.0, 0, n, seed, None,
                    -1, {"repeats": task_args})


def ruler_fwe(tokenizer, length: int, *, seed: int = 0, chat: bool | None = None) -> TaskExample:
    """RULER frequent words extraction (``fwe``): coded 6-letter words with zeta(alpha = 2) counts
    (vocabulary (L - 50) // 50 words, the most frequent replaced by "..."); name the three most
    frequent. Budget 50 tokens."""
    from scipy.special import zeta

    length, seed = _check_length(length), _check_seed(seed)
    check_tokenizer(tokenizer)
    alpha = RULER_CONFIGS["fwe"][1]["alpha"]
    template, prefix, budget = RULER_TEMPLATES["freq_words_extraction"]
    rng = np.random.default_rng(seed)
    use_chat, render = _frame(tokenizer, chat)
    vocab_size = (length - budget) // 50
    if vocab_size < 5:
        raise ValueError(f"length={length} is too short for fwe: RULER's vocabulary of (L - 50) // 50 "
                         f"words needs L >= 300")
    letters = np.array(list(string.ascii_lowercase))
    vocab = _distinct(lambda: "".join(letters[rng.integers(0, 26, size=6)]), vocab_size, "", set())
    vocab = sorted(vocab)
    vocab = [vocab[i] for i in rng.permutation(len(vocab))]
    vocab[0] = "..."  # RULER: the top-ranked word is noise
    order_seed = int(rng.integers(2 ** 31))
    k = np.arange(1, vocab_size + 1)

    def words(n: int) -> list[str]:
        counts = (n * k ** -alpha / zeta(alpha)).astype(int)
        out = [w for w, c in zip(vocab, counts, strict=True) for _ in range(c)]
        return [out[j] for j in np.random.default_rng(order_seed).permutation(len(out))]

    def build(n: int) -> str:
        return render(template.format(context=" ".join(words(n)), query=""), prefix)

    n, ids = _fit(tokenizer, use_chat, build, length, budget, 4 * length, 50, "words")
    counts = (n * k ** -alpha / zeta(alpha)).astype(int)
    if not counts[1] > counts[2] > counts[3] > counts[4]:
        raise ValueError(f"length={length} is too short for fwe: the three most frequent words tie")
    text = build(n)
    return _example("fwe", tokenizer, use_chat, text, ids, vocab[1:4], length, budget, 0.0, 0, n, seed, None,
                    -1, {"counts": [int(c) for c in counts[:5]]})


# ----------------------------------------------------------------------------- qa (local data only)

def ruler_qa(tokenizer, task: str, length: int, path, *, index: int = 0, seed: int = 0,
             chat: bool | None = None) -> TaskExample:
    """RULER ``qa_1`` (SQuAD v2 dev JSON) / ``qa_2`` (HotpotQA distractor dev JSON) from a local file
    ``path``, read through ``datasets``; nothing ships with creamviz and nothing is downloaded.
    Question ``index``; gold documents plus distractors (SQuAD: the article's other paragraphs first),
    shuffled, as many as fit with RULER's 32-token budget; scored with ``string_match_part``."""
    import datasets

    check_choice("task", task, ("qa_1", "qa_2"))
    length, seed = _check_length(length), _check_seed(seed)
    check_tokenizer(tokenizer)
    ds = datasets.load_dataset("json", data_files=str(path), split="train", field="data" if task == "qa_1" else None)
    qas, docs = [], []
    if task == "qa_1":
        for art in ds:
            paras = [p["context"] for p in art["paragraphs"]]
            for p in art["paragraphs"]:
                for q in p["qas"]:
                    if not q.get("is_impossible", False):
                        qas.append((q["question"], [a["text"] for a in q["answers"]], [p["context"]],
                                    [c for c in paras if c != p["context"]]))
            docs += paras
    else:
        for d in ds:
            ctx = [f"{t}\n{''.join(p)}" for t, p in zip(d["context"]["title"], d["context"]["sentences"],
                                                        strict=True)] if isinstance(d["context"], dict) \
                else [f"{t}\n{''.join(p)}" for t, p in d["context"]]
            qas.append((d["question"], [d["answer"]], ctx, []))
            docs += ctx
    docs = sorted(set(docs))
    if not 0 <= index < len(qas):
        raise ValueError(f"index={index} is out of range: valid is an integer in [0, {len(qas) - 1}]")
    question, outputs, gold, more = qas[index]
    rng = np.random.default_rng(seed)
    others = [d for d in docs if d not in gold and d not in more]
    extra = [others[i] for i in rng.permutation(len(others))]
    template, prefix, budget = RULER_TEMPLATES["qa"]
    use_chat, render = _frame(tokenizer, chat)
    order_seed = int(rng.integers(2 ** 31))

    def build(n: int) -> str:
        chosen = (gold + more + extra)[:max(n, len(gold))]
        chosen = [chosen[j] for j in np.random.default_rng(order_seed).permutation(len(chosen))]
        ctx = "\n\n".join(RULER_DOCUMENT.format(i=i + 1, document=d) for i, d in enumerate(chosen))
        return render(template.format(context=ctx, query=question), prefix)

    n, ids = _fit(tokenizer, use_chat, build, length, budget, len(gold) + len(more) + len(extra), len(gold),
                  "documents")
    text = build(n)
    return _example(task, tokenizer, use_chat, text, ids, outputs, length, budget, 0.0, 0, n, seed, None,
                    text.find(gold[0]), {"question": question})


# ----------------------------------------------------------------------------- one entry point

def ruler_example(tokenizer, task: str, length: int, *, seed: int = 0, depth: float | None = None,
                  chat: bool | None = None, essay: Sequence[str] | None = None) -> TaskExample:
    """One prompt of any of RULER's 11 synthetic tasks (:data:`RULER_SYNTHETIC`) at ``length`` tokens."""
    check_choice("task", task, RULER_SYNTHETIC)
    if task in RULER_NIAH_TASKS:
        return ruler_niah(tokenizer, task, length, seed=seed, depth=depth, chat=chat, essay=essay)
    if depth is not None:
        raise ValueError(f"depth={depth!r}: only the niah tasks place a needle at a depth; give None for {task}")
    return {"vt": ruler_vt, "cwe": ruler_cwe, "fwe": ruler_fwe}[task](tokenizer, length, seed=seed, chat=chat)

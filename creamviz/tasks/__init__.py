"""Long-context retrieval tasks: seeded, tokenizer-agnostic generators sized in tokens.

Four tasks, each keeping the structure of the paper's templates (docs/CREAM.md, section 9) but with
a vocabulary scaled down for the byte-level tiny model (1 token = 1 byte, window N = 256):

- ``kv_retrieval``  Lost in the Middle key-value retrieval: a JSON-like object of n pairs of short
  **hex** keys/values (4 hex digits each instead of UUIDs, so a pair costs 10 bytes), the gold pair at a
  chosen index, then the query key. ``kv {3fa0:91c2,7be1:0d44,...}\n7be1:`` -> ``0d44``.
- ``lines_retrieval`` LongChat-Lines: n lines ``line <3-hex id>: <4-digit number>``, then
  ``what is in line <id>? `` -> the number.
- ``passkey``  a 5-digit pass key hidden at a chosen depth of the repeated grass/sky/sun filler.
- ``niah``  needle in a haystack: ``The magic number is <4 digits>.`` inserted at depth d of natural
  text (held-out CPython documentation); ``niah_grid`` gives the length x depth grid.

Every generator takes ``length`` = the token budget L for prompt **plus** answer (so greedy decoding of
the answer stays inside L), fills it with as many items as fit, and returns a ``TaskExample`` whose
``prompt_ids`` come from the given tokenizer (``add_special_tokens=False``, BOS prepended when the
tokenizer has one). Depth is the relative position of the relevant item in [0, 1]; ``gold_pos`` is its
token offset in the prompt. Randomness comes only from ``numpy.random.default_rng(seed)``.

Modules by family: :mod:`~creamviz.tasks.byte` (the byte-scaled tasks above), :mod:`~creamviz.tasks.ruler`
(RULER-style), :mod:`~creamviz.tasks.real` (real-model chat tasks), :mod:`~creamviz.tasks.scoring` and
:mod:`~creamviz.tasks.evalsets` (the registry, depth sweeps and the fixed sets shipped in the package's
``resources/eval/``, ``load_eval_set``). Everything public is re-exported here: ``tasks.kv_retrieval``.
"""

from __future__ import annotations

from creamviz.tasks.byte import (  # noqa: F401
    KV_PREFIX,
    KV_SEP,
    KV_SUFFIX,
    LINES_PREFIX,
    NIAH_NEEDLE,
    NIAH_QUERY,
    PASSKEY_FILLER,
    PASSKEY_NEEDLE,
    PASSKEY_PREFIX,
    PASSKEY_QUERY,
    TASKS,
    kv_retrieval,
    kv_text,
    lines_retrieval,
    lines_text,
    niah,
    niah_grid,
    passkey,
)
from creamviz.tasks.common import (  # noqa: F401
    CORPUS_PATH,
    EVAL_DIR,
    MAX_EXAMPLES,
    MAX_LENGTH,
    TaskExample,
    _round,
    check_example_count,
    check_tokenizer,
    encode,
    load_corpus,
    n_answer_tokens,
)
from creamviz.tasks.evalsets import (  # noqa: F401
    EVAL_DEPTHS,
    EVAL_LENGTHS,
    GENERATORS,
    REAL_EVAL_DIR,
    REAL_EVAL_LENGTHS,
    REAL_EVAL_SEED,
    RULER_EVAL_LENGTH,
    STUDY_KV_SET,
    build_eval_sets,
    build_real_eval_sets,
    build_ruler_eval_sets,
    depth_sweep,
    eval_set_names,
    load_chat_eval_set,
    load_eval_set,
    real_eval_set_names,
    ruler_eval_set_name,
    save_chat_eval_set,
    save_eval_set,
)
from creamviz.tasks.litm import (  # noqa: F401
    LINES_HEADER,
    LINES_LINE,
    LINES_QUESTION,
    LITM_DEPTHS,
    LITM_GOLD_INDICES,
    LITM_PAIRS,
    litm_gold_index,
    litm_kv,
    longchat_lines,
)
from creamviz.tasks.real import (  # noqa: F401
    CHAT_TASKS,
    FIRST_INTEGER_SCORED,
    LIM_KV_QUESTION,
    LIM_KV_TEMPLATE,
    NIAH_CHAT_OPENING,
    NIAH_CHAT_QUESTION,
    PASSKEY_CHAT_OPENING,
    PASSKEY_CHAT_QUESTION,
    SUBSTRING_SCORED,
    chat_token_spans,
    encode_chat,
    kv_uuid,
    lim_kv_records,
    niah_chat,
    passkey_chat,
    render_chat,
)
from creamviz.tasks.ruler import (  # noqa: F401
    KV_MQ_SEP,
    MK_NEEDLE,
    MK_QUERY,
    MV_QUERY,
    RULER_GENERATORS,
    RULER_TASKS,
    VT_FIRST,
    VT_HOP,
    VT_QUERY,
    kv_multiquery,
    multikey_niah,
    multivalue_niah,
    variable_tracking,
)
from creamviz.tasks.ruler_verbatim import (  # noqa: F401
    RULER_ANSWER_SEP,
    RULER_CONFIGS,
    RULER_DEPTHS,
    RULER_NEEDLE,
    RULER_NIAH_TASKS,
    RULER_NOISE,
    RULER_SYNTHETIC,
    RULER_TEMPLATES,
    RULER_VERBATIM_TASKS,
    ruler_budget,
    ruler_cwe,
    ruler_example,
    ruler_fwe,
    ruler_niah,
    ruler_qa,
    ruler_vt,
)
from creamviz.tasks.scoring import (  # noqa: F401
    BYTE_MODE,
    PEER_BUDGETS,
    SCORERS,
    TASK_SPECS,
    TaskSpec,
    all_strings_exact,
    all_strings_score,
    first_integer_numeric,
    first_number_exact,
    required_strings,
    ruler_partial_score,
    score,
    score_value,
    string_match_all,
    string_match_part,
    substring_exact,
    substring_nocase,
    task_spec,
)

__all__ = ['CORPUS_PATH', 'EVAL_DIR', 'TaskExample', 'encode', 'n_answer_tokens', 'MAX_LENGTH', 'MAX_EXAMPLES', 'check_example_count', 'load_corpus', 'TASKS', 'KV_PREFIX', 'KV_SEP', 'KV_SUFFIX', 'LINES_PREFIX', 'PASSKEY_PREFIX', 'PASSKEY_FILLER', 'PASSKEY_NEEDLE', 'PASSKEY_QUERY', 'NIAH_NEEDLE', 'NIAH_QUERY', 'kv_text', 'kv_retrieval', 'lines_text', 'lines_retrieval', 'passkey', 'niah', 'niah_grid', 'RULER_TASKS', 'MK_NEEDLE', 'MK_QUERY', 'MV_QUERY', 'VT_FIRST', 'VT_HOP', 'VT_QUERY', 'KV_MQ_SEP', 'multikey_niah', 'multivalue_niah', 'variable_tracking', 'kv_multiquery', 'RULER_GENERATORS', 'CHAT_TASKS', 'SUBSTRING_SCORED', 'FIRST_INTEGER_SCORED', 'LIM_KV_TEMPLATE', 'LIM_KV_QUESTION', 'PASSKEY_CHAT_QUESTION', 'PASSKEY_CHAT_OPENING', 'NIAH_CHAT_QUESTION', 'NIAH_CHAT_OPENING', 'lim_kv_records', 'render_chat', 'encode_chat', 'chat_token_spans', 'kv_uuid', 'passkey_chat', 'niah_chat', 'score', 'score_value', 'required_strings', 'all_strings_score', 'ruler_partial_score', 'SCORERS', 'TASK_SPECS', 'TaskSpec', 'BYTE_MODE', 'PEER_BUDGETS', 'task_spec', 'string_match_all', 'string_match_part', 'substring_nocase', 'first_integer_numeric', 'all_strings_exact', 'substring_exact', 'first_number_exact', 'RULER_ANSWER_SEP', 'RULER_CONFIGS', 'RULER_DEPTHS', 'RULER_NEEDLE', 'RULER_NIAH_TASKS', 'RULER_NOISE', 'RULER_SYNTHETIC', 'RULER_TEMPLATES', 'RULER_VERBATIM_TASKS', 'ruler_budget', 'ruler_cwe', 'ruler_example', 'ruler_fwe', 'ruler_niah', 'ruler_qa', 'ruler_vt', 'LINES_HEADER', 'LINES_LINE', 'LINES_QUESTION', 'LITM_DEPTHS', 'LITM_GOLD_INDICES', 'LITM_PAIRS', 'litm_gold_index', 'litm_kv', 'longchat_lines', 'check_tokenizer', 'REAL_EVAL_DIR', 'REAL_EVAL_LENGTHS', 'REAL_EVAL_SEED', 'GENERATORS', 'depth_sweep', 'save_eval_set', 'eval_set_names', 'load_eval_set', 'EVAL_DEPTHS', 'EVAL_LENGTHS', 'build_eval_sets', 'RULER_EVAL_LENGTH', 'STUDY_KV_SET', 'ruler_eval_set_name', 'build_ruler_eval_sets', 'save_chat_eval_set', 'real_eval_set_names', 'load_chat_eval_set', 'build_real_eval_sets']

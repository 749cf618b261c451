import os

import pytest
from hypothesis import settings

# Hypothesis profiles: property tests without an explicit max_examples take it from here.
# "dev" (default) and "ci" (set CI=true or HYPOTHESIS_PROFILE=ci: fewer examples, a fixed seed so a
# CI run repeats) never time examples out (deadline=None: the machine may be shared); "thorough"
# (HYPOTHESIS_PROFILE=thorough) for a long local run.
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Nothing may download at test time: models are the tiny shipped one or local paths.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def bpe():
    """A small BPE tokenizer trained here on the corpus (no download): tokens that are not bytes,
    with a BOS token, to check that task generators are tokenizer-agnostic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from creamviz import tasks

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(tasks.load_corpus("train")[:10], trainer)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")


# --------------------------------------------------------------------------- shared, built once
TINY_WINDOW = 64  # N of the random tiny Llama the training tests fine-tune
TINY_SHAPE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, max_position_embeddings=TINY_WINDOW)


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory):
    """A tiny random Llama (N = 64, seed 0) saved as safetensors, once per session (read-only:
    tests that change a model save their own copy)."""
    from creamviz.models import tiny_llama

    path = tmp_path_factory.mktemp("tiny-base")
    tiny_llama(**TINY_SHAPE, seed=0).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """The first 20 kB of the shipped corpus (tokenising all of it costs ~0.5 s per run)."""
    from creamviz.data import read_corpus

    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(read_corpus()[:20_000], encoding="utf-8")
    return path

"""CREAM-Chat data without the real model: chat-template rendering and labels on a byte tokenizer given
a ChatML template (a byte tokenizer makes every token one byte, so spans are checked by hand), the
LongChat-Lines generator, and chat rows through load_documents."""

from __future__ import annotations

import json

import pytest

from creamviz.chat import SHIPPED_CHATS, SHIPPED_RECIPE, longchat_lines_chats, render_chat

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"},
            {"role": "assistant", "content": "6"}]


@pytest.fixture()
def chat_tok():
    from creamviz.models import byte_tokenizer

    tok = byte_tokenizer()
    tok.chat_template = CHATML
    return tok


def test_render_chat_labels_all_or_assistant(chat_tok):
    ids, labels = render_chat(chat_tok, MESSAGES, labels="all")
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in MESSAGES)  # by hand
    assert bytes(i - 3 for i in ids).decode() == text and labels == ids
    ids_a, labels_a = render_chat(chat_tok, MESSAGES, labels="assistant")
    assert ids_a == ids
    kept = bytes(i - 3 for i, lab in zip(ids_a, labels_a, strict=True) if lab != -100).decode()
    assert kept == "4<|im_end|>\n6<|im_end|>\n"  # the answers and their end of turn, not the header
    # the kept bytes are exactly the answers' positions in the text
    first = text.index("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
    assert labels_a[first] == ids[first] and labels_a[first - 1] == -100


def test_render_chat_rejects_bad_input(chat_tok):
    from creamviz.models import byte_tokenizer

    with pytest.raises(ValueError, match="no chat template"):
        render_chat(byte_tokenizer(), MESSAGES)
    with pytest.raises(ValueError, match="labels='user'"):
        render_chat(chat_tok, MESSAGES, labels="user")
    with pytest.raises(ValueError, match="message 1 must be"):
        render_chat(chat_tok, [MESSAGES[0], {"role": "bot", "content": "x"}])
    with pytest.raises(ValueError, match="non-empty list"):
        render_chat(chat_tok, [])
    chat_tok.chat_template = "{% for m in messages|reverse %}{{ m['content'] }}{% endfor %}"  # not prefix-stable
    with pytest.raises(ValueError, match="extension of the messages before it"):
        render_chat(chat_tok, MESSAGES, labels="assistant")  # "all" labels the whole rendering, any template


def test_longchat_lines_generator_and_shipped_file():
    a = longchat_lines_chats(3, n_lines=10, lines_per_turn=4, seed=1)
    assert a == longchat_lines_chats(3, n_lines=10, lines_per_turn=4, seed=1)
    assert a != longchat_lines_chats(3, n_lines=10, lines_per_turn=4, seed=2)
    assert longchat_lines_chats(2, n_lines=10, lines_per_turn=4, seed=1) == a[:2]  # chat i depends on (seed, i)
    for chat in a:
        msgs = chat["messages"]
        roles = [m["role"] for m in msgs]
        assert roles == ["system"] + ["user", "assistant"] * 4  # 3 dictation turns + the question
        dictated = "\n".join(m["content"] for m in msgs if m["role"] == "user")
        assert f"line {chat['line']}: REGISTER_CONTENT is <{chat['answer']}>" in dictated
        assert dictated.count("REGISTER_CONTENT is <") == 10
        assert msgs[-1]["content"].endswith(f"<{chat['answer']}>.")
    shipped = [json.loads(x) for x in SHIPPED_CHATS.read_text().splitlines()]
    assert shipped == longchat_lines_chats(**SHIPPED_RECIPE)
    with pytest.raises(ValueError, match="n_lines=901"):
        longchat_lines_chats(1, n_lines=901)
    with pytest.raises(ValueError, match="lines_per_turn=0"):
        longchat_lines_chats(1, lines_per_turn=0)


def test_chat_rows_through_load_documents(chat_tok, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    from creamviz.data import load_documents

    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps({"messages": MESSAGES[:k]}) + "\n" for k in (3, 5)))
    ds, col = load_documents(path, chat_tok, chat_labels="assistant")
    assert col == "messages" and sorted(ds.column_names) == ["input_ids", "labels"]
    for row, k in zip(ds, (3, 5), strict=True):
        assert (row["input_ids"], row["labels"]) == tuple(map(list, render_chat(chat_tok, MESSAGES[:k], labels="assistant")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "robot", "content": "hi"}]}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl', column 'messages': message 0 must be"):
        load_documents(bad, chat_tok)

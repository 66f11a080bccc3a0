"""The models' own tokenizers, loaded from local folders on first use.

transformers is imported only when a text-only record needs it, so an
invocation whose records all carry counts never pays for the import.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class TokenizerUnavailable(Exception):
    """Raised when a configured tokenizer folder cannot be loaded."""


class ModelTokenizer:
    """One model's tokenizer: counts prompts, chats and completions in batches."""

    def __init__(self, folder: str):
        try:
            # Lambda has no PyTorch and tokenizers need none; never reach for the Hub at run time.
            os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoTokenizer

            self._hf: Any = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            # The fast (Rust) pipeline transformers built from the folder; its
            # batch encoder skips the offsets transformers would compute.
            self._fast: Any = self._hf.backend_tokenizer
        except Exception as exc:  # any failure means no trustworthy counts for this model
            raise TokenizerUnavailable(f"cannot load tokenizer from {folder}: {type(exc).__name__}: {exc}") from exc
        self.has_chat_template = bool(getattr(self._hf, "chat_template", None))

    def count_prompts(self, prompts: Sequence[str]) -> list[int]:
        """Tokens of each prompt as the model receives it: special tokens such as BOS included."""
        return [len(e) for e in self._fast.encode_batch_fast(list(prompts), add_special_tokens=True)]

    def count_chats(self, conversations: Sequence[list[dict[str, str]]]) -> list[int]:
        """Tokens of each conversation rendered by the chat template, generation prompt added."""
        if not conversations:  # transformers reads an empty batch as one empty conversation, and raises
            return []
        if not self.has_chat_template:
            # No template to say how the model saw the turns: count the turns' text as one prompt.
            return self.count_prompts(["\n".join(m["content"] for m in chat) for chat in conversations])
        rendered = self._hf.apply_chat_template(list(conversations), tokenize=False, add_generation_prompt=True)
        # The template writes the special tokens itself (BOS included).
        return [len(e) for e in self._fast.encode_batch_fast(rendered, add_special_tokens=False)]

    def count_completions(self, completions: Sequence[str]) -> list[int]:
        """Tokens of each completion without special tokens."""
        return [len(e) for e in self._fast.encode_batch_fast(list(completions), add_special_tokens=False)]


class TokenizerPool:
    """Maps a model name to its tokenizer by the config's glob patterns; first match wins."""

    def __init__(self, patterns: Mapping[str, str], load: Callable[[str], ModelTokenizer] = ModelTokenizer):
        self._patterns = list(patterns.items())
        self._load = load
        self._folders: dict[str, str | None] = {}
        self._loaded: dict[str, ModelTokenizer | TokenizerUnavailable] = {}

    def folder_for(self, model: str) -> str | None:
        if model not in self._folders:
            self._folders[model] = next(
                (folder for pattern, folder in self._patterns if fnmatch.fnmatchcase(model, pattern)), None
            )
        return self._folders[model]

    def tokenizer(self, folder: str) -> ModelTokenizer:
        """The loaded tokenizer; a folder that failed once keeps failing without a reload."""
        if folder not in self._loaded:
            try:
                self._loaded[folder] = self._load(folder)
            except TokenizerUnavailable as exc:
                self._loaded[folder] = exc
        loaded = self._loaded[folder]
        if isinstance(loaded, TokenizerUnavailable):
            raise loaded
        return loaded

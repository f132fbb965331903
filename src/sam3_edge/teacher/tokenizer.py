"""Offline tokenisation for the teacher.

Real profile: the CLIP BPE tokenizer shipped in the facebook/sam3 directory is loaded with
``AutoTokenizer.from_pretrained(<dir>)`` (local files only, never a download). Bootstrap profile: a word-level
tokenizer built with the ``tokenizers`` library from the train split's vocabulary and saved as
``tokenizer.json`` next to the teacher weights. It keeps CLIP's conventions (lower-casing, ``<|startoftext|>``
... ``<|endoftext|>`` around the phrase, padding to 32 tokens with the end token) so the CLIP text encoder inside
``Sam3Model`` sees the same input structure as with the real tokenizer; unknown words map to ``<unk>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast

BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "<unk>"
VISUAL = "visual"  # SAM 3's phrase for geometry-only prompts (Sam3Processor uses the same word)
MAX_TEXT_LEN = 32  # SAM 3 pads every phrase to 32 tokens


def vocabulary(phrases: Iterable[str]) -> list[str]:
    """Sorted lower-cased words of ``phrases`` (plus ``visual``), the word-level vocabulary."""
    words = {w for p in phrases for w in re.findall(r"\w+|[^\w\s]", p.lower())}
    words.add(VISUAL)
    return sorted(words)


def build_word_tokenizer(phrases: Iterable[str]) -> PreTrainedTokenizerFast:
    """A CLIP-shaped word-level tokenizer over the words of ``phrases``; ids 0/1/2 = bos/eos/unk."""
    vocab = {BOS: 0, EOS: 1, UNK: 2}
    for word in vocabulary(phrases):
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A {EOS}", special_tokens=[(BOS, 0), (EOS, 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, unk_token=UNK, pad_token=EOS, model_max_length=MAX_TEXT_LEN
    )


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """Load the tokenizer saved in a teacher directory (bootstrap or facebook/sam3), from local files only."""
    directory = Path(directory)
    if not any((directory / f).exists() for f in ("tokenizer.json", "vocab.json", "tokenizer_config.json")):
        raise FileNotFoundError(f"{directory}: no tokenizer files (tokenizer.json / vocab.json + merges.txt)")
    return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)

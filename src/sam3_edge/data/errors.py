"""Bad-input reporting shared by readers, validation, indexing and the CLI.

A reader that meets a bad file raises :class:`DataError` (file + short reason code + detail); the indexer
turns it into a recorded, counted skip (:class:`SkipLog`), the CLI into one line per bad file. Nothing deep
inside a library (PIL, pycocotools, PyAV, json) ever reaches the user as a traceback.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class DataError(ValueError):
    """A dataset file is unusable. ``reason`` is a short code counted in metrics (``bad_rle``, ``not_json``...)."""

    def __init__(self, path: object, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass
class SkipLog:
    """Every skipped file with its reason, in order; ``counts()`` feeds ``metrics/data.json``."""

    entries: list[dict[str, str]] = field(default_factory=list)

    def add(self, err: DataError, *, dataset: str = "", split: str = "") -> None:
        self.entries.append(
            {"dataset": dataset, "split": split, "file": err.path, "reason": err.reason, "detail": err.detail}
        )

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e["reason"] for e in self.entries).items()))

    def __len__(self) -> int:
        return len(self.entries)

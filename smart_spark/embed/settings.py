"""The encoder settings a run embeds with, as one plain object (no torch, no Spark)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EncoderSettings:
    """Which encoder and how it runs: ``model`` (a folder or offline id; None = the bundled one),
    ``max_length`` (truncation, tokens), ``batch_size`` (most rows per forward pass), ``max_tokens`` (most
    padded tokens per pass; None = rows only), ``device`` and ``precision`` (as given: ``auto`` is resolved
    where the encoder runs)."""

    model: str | None = None
    max_length: int = 256
    batch_size: int = 64
    max_tokens: int | None = None
    device: str = "auto"
    precision: str = "float32"

    def options(self) -> dict[str, Any]:
        """The settings as keyword arguments (the names the embedding functions take)."""
        return dataclasses.asdict(self)

"""Arrow UDFs over text that need the encoder's tokenizer (no weights): chat-template rendering and
untruncated token counts. Each Python worker loads the tokenizer once
(:func:`~smart_spark.embed.encoder.load_tokenizer`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql.column import Column
from pyspark.sql.functions import arrow_udf
from pyspark.sql.types import LongType, StringType

from smart_spark.embed.encoder import load_tokenizer, token_counts
from smart_spark.errors import SmartError


def chat_template_udf(model: str | None) -> Callable[[Column | str], Column]:
    """``array<struct<role, content>>`` -> string: the tokenizer's chat template applied to the turns,
    with ``add_generation_prompt=True`` (the text a chat model reads before it answers)."""

    def render(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        tokenizer = load_tokenizer(model)
        for batch in batches:
            out = []
            for turns in batch.to_pylist():
                try:
                    out.append(tokenizer.apply_chat_template(turns or [], tokenize=False,
                                                             add_generation_prompt=True))
                except Exception as exc:  # the template's own raise_exception(...) and Jinja errors
                    raise SmartError(f"--prompt-from chat_template: the chat template of --model rejects "
                                     f"a conversation: {exc}") from exc
            yield pa.array(out, pa.string())

    return arrow_udf(render, StringType())


def token_count_udf(model: str | None) -> Callable[[Column | str], Column]:
    """string -> long: the text's token count before truncation (see ``token_counts``)."""

    def count(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for batch in batches:
            yield pa.array(token_counts(model, [t or "" for t in batch.to_pylist()]), pa.int64())

    return arrow_udf(count, LongType())

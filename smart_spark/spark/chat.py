"""Chat input: what "the prompt" of a conversation is, rendered with Spark SQL higher-order functions.

A ``--messages-col`` holds ``array<struct<role, content>>`` (OpenAI style) or
``array<struct<from, value>>`` (ShareGPT style), told apart by the struct's field names. Roles are
normalised first (:data:`ROLES`): OpenAI ``system``/``developer`` -> ``system``, ``user``, ``assistant``,
``tool``/``function`` -> ``tool``; ShareGPT ``system``, ``human`` -> ``user``, ``gpt`` -> ``assistant``
(``user``/``assistant``/``tool`` are accepted there too). Anything else is an unknown role.
System turns with empty content are dropped (exports often carry ``{"role": "system", "content": ""}``).

``--prompt-from`` (:data:`PROMPT_FROM`):

- ``first_user`` (default): the content of the first user turn;
- ``all_user``: every user turn's content, joined by a blank line;
- ``context``: every turn before the final assistant turn, one ``role: content`` line per turn
  (normalised roles), joined by ``\\n``; the whole conversation when no assistant turn;
- ``chat_template``: the same turns rendered by the encoder tokenizer's chat template
  (``add_generation_prompt=True``: the text a chat model reads before it writes the final answer).

All but ``chat_template`` are SQL expressions (``filter``/``transform``/``array_join``): no Python runs
per row. ``chat_template`` needs Jinja, so it is an Arrow UDF (:mod:`smart_spark.udfs.text`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smart_spark.errors import SmartError

PROMPT_FROM = ("first_user", "all_user", "context", "chat_template")
DEFAULT_PROMPT_FROM = "first_user"
#: style -> (role field, content field, {raw role (lower case) -> normalised role})
ROLES: dict[str, tuple[str, str, dict[str, str]]] = {
    "openai": ("role", "content", {"system": "system", "developer": "system", "user": "user",
                                   "assistant": "assistant", "tool": "tool", "function": "tool"}),
    "sharegpt": ("from", "value", {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                                   "assistant": "assistant", "tool": "tool"}),
}
TURNS_TYPE = "array<struct<role:string,content:string>>"


def chat_style(df: DataFrame, column: str) -> str:
    """``openai`` or ``sharegpt`` from the column's type; SmartError naming the flag otherwise."""
    fields = {f.name: f.dataType for f in df.schema.fields}
    if column not in fields:
        raise SmartError(f"--messages-col {column!r} is not a column of the input "
                         f"(columns: {', '.join(df.columns)})")
    dtype = fields[column]
    if isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, T.StructType):
        names = set(dtype.elementType.fieldNames())
        for style, (role, content, _) in ROLES.items():
            if {role, content} <= names:
                return style
    raise SmartError(
        f"--messages-col {column!r} has type {dtype.simpleString()}; expected an array of structs with "
        "role/content (OpenAI style) or from/value (ShareGPT style)"
    )


def turns(column: str, style: str) -> Column:
    """The conversation as ``array<struct<role, content>>`` with normalised roles (null: unknown role),
    empty system turns dropped; a null conversation becomes an empty array."""
    role_field, content_field, aliases = ROLES[style]

    def normalise(m: Column) -> Column:
        raw = F.lower(F.trim(m[role_field].cast("string")))
        role = None
        for name, to in aliases.items():
            role = F.when(raw == name, F.lit(to)) if role is None else role.when(raw == name, F.lit(to))
        return F.struct(role.alias("role"), m[content_field].cast("string").alias("content"))

    normalised = F.transform(F.coalesce(F.col(column), F.array()), normalise)
    return F.filter(normalised, lambda t: ~((t["role"] == "system") & blank(t["content"])))


def blank(text: Column) -> Column:
    """True for a null, empty or whitespace-only string (spaces, tabs, newlines)."""
    return F.coalesce(text.rlike(r"^\s*$"), F.lit(True))


def context(conversation: Column) -> Column:
    """The turns before the final assistant turn (all turns when there is none)."""
    from_end = F.array_position(F.reverse(F.transform(conversation, lambda t: t["role"])), "assistant")
    return F.when(from_end > 0, F.slice(conversation, 1, F.size(conversation) - from_end)).otherwise(
        conversation)


def _user(conversation: Column) -> Column:
    return F.filter(conversation, lambda t: t["role"] == "user")


def prompt_text(conversation: Column, prompt_from: str) -> Column:
    """The text to embed (string) for ``first_user``, ``all_user`` or ``context``."""
    if prompt_from == "first_user":
        return F.element_at(_user(conversation), 1)["content"]
    if prompt_from == "all_user":
        return F.array_join(F.transform(_user(conversation), lambda t: t["content"]), "\n\n")
    if prompt_from == "context":
        lines = F.transform(context(conversation), lambda t: F.concat(t["role"], F.lit(": "), t["content"]))
        return F.array_join(lines, "\n")
    raise SmartError(f"--prompt-from must be one of {', '.join(PROMPT_FROM)}, got {prompt_from!r}")


def check_conversations(df: DataFrame, conversation: str, *, column: str, prompt_from: str) -> None:
    """SmartError naming every kind of bad conversation with its count and smallest ``id``.

    ``df`` has the normalised ``conversation`` column and ``id``. Bad: an unknown role; no user turn
    (in the embedded turns for ``context``/``chat_template``); a user or assistant turn with empty content.
    """
    conv = F.col(conversation)
    embedded = context(conv) if prompt_from in ("context", "chat_template") else conv
    problems = {
        "an unknown role": F.exists(conv, lambda t: t["role"].isNull()),
        "no user turn" + (" before the final assistant turn" if embedded is not conv else ""):
            ~F.exists(embedded, lambda t: t["role"] == "user"),
        "a user or assistant turn with empty content":
            F.exists(conv, lambda t: t["role"].isin("user", "assistant") & blank(t["content"])),
    }
    aggs = []
    for i, cond in enumerate(problems.values()):
        aggs += [F.sum(cond.cast("long")).alias(f"n{i}"), F.min(F.when(cond, F.col("id"))).alias(f"id{i}")]
    row = df.agg(*aggs).first()
    found = [f"{row[f'n{i}']} conversation(s) have {what} (smallest id {row[f'id{i}']!r})"
             for i, what in enumerate(problems) if row[f"n{i}"]]
    if found:
        known = sorted({r for _, _, a in ROLES.values() for r in a})
        raise SmartError(f"--messages-col {column!r}: " + "; ".join(found)
                         + f" (known roles: {', '.join(known)}; --prompt-from {prompt_from})")

"""Input as users hold it: SQL-derived task/prompt columns and chat conversations (OpenAI and ShareGPT),
through real Spark, the real encoder and real Delta tables. The embedded text is checked exactly: the
embeddings cache is keyed by the SHA-256 of the text the encoder saw."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from deltalake import DeltaTable

from smart_spark.cli.settings import make_config
from smart_spark.embed.model_folder import default_model_path
from smart_spark.errors import SmartError
from smart_spark.jobs.export_mixture import main as export_main
from smart_spark.jobs.smart_mixture import run
from smart_spark.spark.reader import PROMPT_COLUMN, InputSpec, prepare

pytestmark = pytest.mark.spark

TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_jsonl(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)


def cached_shas(out: str) -> set[str]:
    return set(DeltaTable(f"{out}/embeddings").to_pandas()["text_sha256"])


# --------------------------------------------------------------------------------------------------
# Alpaca-shaped input: instruction + optional input, task from a SQL expression

ALPACA = [
    {"instruction": f"Give {k + i} synonyms for '{w}'.", "input": "" if k % 2 else f"Context {k}",
     "output": f"answer {k} {w}", "category": None if (k + i) % 7 == 0 else cat}
    for i, (cat, w) in enumerate([("brainstorming", "happy"), ("classification", "fast"),
                                  ("open_qa", "tree"), ("summarization", "river")] * 6)
    for k in range(1, 3)
]


def alpaca_prompt(row: dict) -> str:
    return "\n\n".join(p for p in (row["instruction"], row["input"]) if p is not None)


def test_alpaca_through_prompt_expr_and_task_expr(spark, tmp_path):
    path = write_jsonl(tmp_path / "alpaca.jsonl", ALPACA)
    out = str(tmp_path / "out")
    config = make_config(dict(
        input=path, output=out, num_instances=20, run_id="alpaca", report=False,
        prompt_expr="concat_ws('\\n\\n', instruction, nullif(input, ''))",
        task_expr="coalesce(category, 'unknown')", response_col="output"))
    summary = run(spark, config)
    # The embedded texts are exactly instruction + blank line + input (input left out when empty).
    expected = {sha("\n\n".join(p for p in (r["instruction"], r["input"]) if p)) for r in ALPACA}
    assert cached_shas(out) == expected
    mixture = DeltaTable(f"{out}/mixture").to_pandas()
    assert len(mixture) == 20 and summary["mixture_rows"] == 20
    # The task follows the derived value; the original column is kept as it was.
    want = {r["instruction"] + "|" + str(r["input"]): r["category"] or "unknown" for r in ALPACA}
    assert all(want[i + "|" + str(n)] == t for i, n, t in
               zip(mixture["instruction"], mixture["input"], mixture["task"]))
    weights = DeltaTable(f"{out}/task_weights").to_pandas()
    assert "unknown" in set(weights["task"]) and len(weights) == 5
    assert "__smartspark_prompt" not in mixture.columns
    # The id hashes (derived task, derived prompt, response).
    row = mixture.iloc[0]
    prompt = "\n\n".join(p for p in (row["instruction"], row["input"]) if p)
    assert row["id"] == sha("\u001f".join([row["task"], prompt, row["output"]]))


@pytest.mark.parametrize("flag,expr,needle", [
    ("prompt_expr", "concat_ws(' ', instruction, no_such_column)", "no_such_column"),
    ("prompt_expr", "concat_ws(' ', instruction", "--prompt-expr"),
    ("task_expr", "upper(categry)", "categry"),
    ("task_expr", "count(*)", "--task-expr"),
    ("prompt_expr", "length(instruction)", "not a string"),
])
def test_bad_expressions_are_one_line_naming_the_flag(spark, tmp_path, flag, expr, needle):
    path = write_jsonl(tmp_path / "alpaca.jsonl", ALPACA[:4])
    df = spark.read.json(path)
    spec = InputSpec(input=path, task_col="category", response_col="output", **{flag: expr})
    with pytest.raises(SmartError) as err:
        prepare(df, spec)
    text = str(err.value)
    assert "\n" not in text and f"--{flag.replace('_', '-')}" in text and needle in text


# --------------------------------------------------------------------------------------------------
# Chat: OpenAI and ShareGPT style, every --prompt-from

CONVERSATIONS = [
    # (task, turns as (role, content)); roles in OpenAI names
    ("coding", [("system", "You are terse."), ("user", "Sort [3,1,2] in Python."),
                ("assistant", "sorted([3,1,2])"), ("user", "Descending?"),
                ("assistant", "sorted([3,1,2], reverse=True)")]),
    ("coding", [("user", "What does len() do?"), ("assistant", "Counts items.")]),
    ("chat", [("system", ""), ("user", "Hi there"), ("assistant", "Hello!")]),
    ("chat", [("user", "Tell me a joke."), ("assistant", "A pun."), ("user", "Another one"),
              ("assistant", "Another pun.")]),
    ("math", [("user", "2+2?"), ("assistant", "4")]),
    ("math", [("system", "Show work."), ("user", "3*7?"), ("assistant", "21")]),
]
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def chat_rows(style: str) -> list[dict]:
    rows = []
    for i, (task, turns) in enumerate(CONVERSATIONS):
        if style == "openai":
            messages = [{"role": r, "content": c} for r, c in turns]
            rows.append({"source": task, "conv_id": f"c{i}", "messages": messages})
        else:
            messages = [{"from": SHAREGPT_ROLES[r], "value": c} for r, c in turns]
            rows.append({"source": task, "conv_id": f"c{i}", "conversations": messages})
    return rows


def expected_prompt(turns: list[tuple[str, str]], prompt_from: str) -> str:
    turns = [(r, c) for r, c in turns if not (r == "system" and not c.strip())]
    users = [c for r, c in turns if r == "user"]
    last = max(i for i, (r, _) in enumerate(turns) if r == "assistant")
    context = turns[:last]
    if prompt_from == "first_user":
        return users[0]
    if prompt_from == "all_user":
        return "\n\n".join(users)
    if prompt_from == "context":
        return "\n".join(f"{r}: {c}" for r, c in context)
    # chat_template: TEMPLATE rendered by hand
    return "".join(f"<|{r}|>\n{c}\n" for r, c in context) + "<|assistant|>\n"


@pytest.fixture(scope="module")
def template_model(tmp_path_factory):
    """The bundled encoder folder with a chat template added to its tokenizer_config.json."""
    folder = tmp_path_factory.mktemp("model") / "minilm-chat"
    shutil.copytree(default_model_path(), folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = TEMPLATE
    config_path.write_text(json.dumps(config))
    return str(folder)


@pytest.mark.parametrize("style", ["openai", "sharegpt"])
@pytest.mark.parametrize("prompt_from", ["first_user", "all_user", "context", "chat_template"])
def test_chat_prompt_text_is_exact(spark, tmp_path, template_model, style, prompt_from):
    column = "messages" if style == "openai" else "conversations"
    path = write_jsonl(tmp_path / "chat.jsonl", chat_rows(style))
    spec = InputSpec(input=path, task_col="source", id_col="conv_id", messages_col=column,
                     prompt_from=prompt_from, model=template_model)
    prepared, counts = prepare(spark.read.json(path), spec)
    got = {r["id"]: r[PROMPT_COLUMN] for r in prepared.select("id", PROMPT_COLUMN).collect()}
    assert got == {f"c{i}": expected_prompt(turns, prompt_from) for i, (_, turns) in enumerate(CONVERSATIONS)}
    assert counts == {"rows": len(CONVERSATIONS), "empty_prompts": 0}


def test_chat_template_needs_a_template(spark, tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", chat_rows("openai"))
    spec = InputSpec(input=path, task_col="source", messages_col="messages", prompt_from="chat_template")
    with pytest.raises(SmartError, match="has no chat template"):
        prepare(spark.read.json(path), spec)


@pytest.mark.parametrize("style", ["openai", "sharegpt"])
def test_chat_job_embeds_the_prompt_and_exports_messages_unchanged(spark, tmp_path, style):
    column = "messages" if style == "openai" else "conversations"
    rows = chat_rows(style)
    path = write_jsonl(tmp_path / "chat.jsonl", rows)
    out = str(tmp_path / "out")
    config = make_config(dict(input=path, output=out, num_instances=6, run_id="chat", report=False,
                              task_col="source", messages_col=column, prompt_from="context"))
    run(spark, config)
    assert cached_shas(out) == {sha(expected_prompt(t, "context")) for _, t in CONVERSATIONS}
    mixture = DeltaTable(f"{out}/mixture").to_pandas()
    assert sorted(mixture["conv_id"]) == sorted(r["conv_id"] for r in rows)
    assert set(mixture["task"]) == {"coding", "chat", "math"}

    dest = str(tmp_path / "export")
    assert export_main(["--output", out, "--run-id", "chat", "--dest", dest, "--chat",
                        "--messages-col", column]) == 0
    with open(os.path.join(dest, "train-00000-of-00001.jsonl"), encoding="utf-8") as fh:
        exported = [json.loads(line) for line in fh]
    assert sorted(json.dumps(e["messages"], sort_keys=True) for e in exported) == sorted(
        json.dumps(r[column], sort_keys=True) for r in rows)


def test_bad_conversations_counted_with_smallest_id(spark, tmp_path):
    rows = chat_rows("openai")
    rows += [
        {"source": "bad", "conv_id": "z1", "messages": [{"role": "assistant", "content": "no question"}]},
        {"source": "bad", "conv_id": "y2", "messages": [{"role": "system", "content": "only system"}]},
        {"source": "bad", "conv_id": "x3", "messages": [{"role": "narrator", "content": "Once"},
                                                         {"role": "user", "content": "Hi"}]},
        {"source": "bad", "conv_id": "w4", "messages": [{"role": "user", "content": "  "},
                                                         {"role": "assistant", "content": "?"}]},
    ]
    path = write_jsonl(tmp_path / "chat.jsonl", rows)
    spec = InputSpec(input=path, task_col="source", id_col="conv_id", messages_col="messages")
    with pytest.raises(SmartError) as err:
        prepare(spark.read.json(path), spec)
    text = str(err.value)
    assert "\n" not in text
    assert "1 conversation(s) have an unknown role (smallest id 'x3')" in text
    assert "2 conversation(s) have no user turn (smallest id 'y2')" in text
    assert "1 conversation(s) have a user or assistant turn with empty content (smallest id 'w4')" in text


def test_messages_col_must_be_turns(spark, tmp_path):
    path = write_jsonl(tmp_path / "flat.jsonl", ALPACA[:3])
    spec = InputSpec(input=path, task_col="category", messages_col="instruction")
    with pytest.raises(SmartError, match="--messages-col 'instruction' has type string"):
        prepare(spark.read.json(path), spec)

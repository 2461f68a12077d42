"""Real third-party instruction text for tests: the FLAN chain-of-thought exemplars for the 57 MMLU
subjects, as shipped in the ``lm-eval`` package (EleutherAI lm-evaluation-harness, MIT licence;
``lm_eval/tasks/mmlu/flan_cot_fewshot/_cot_prompts.json``, originally from FLAN, Chung et al. 2022).

Each subject's few-shot prompt is split into its exemplars: one row per ``Q: ... A: ...`` pair, the task
``mmlu/<subject>``, the prompt the question (with its options), the response the worked answer. The file
is read from the installed package without importing it (``lm_eval``'s ``__init__`` pulls in heavy
dependencies).
"""

from __future__ import annotations

import importlib.util
import json
import os

COT_PROMPTS = os.path.join("tasks", "mmlu", "flan_cot_fewshot", "_cot_prompts.json")
_ANSWER = "\nA: "


def cot_prompts_path() -> str:
    """The JSON file inside the installed ``lm_eval`` package; FileNotFoundError without it."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the lm-eval package is not installed (pip install lm-eval)")
    return os.path.join(list(spec.submodule_search_locations)[0], COT_PROMPTS)


def mmlu_cot_rows() -> list[dict[str, str]]:
    """Rows ``{"id", "task", "prompt", "response"}``, subjects in file order, exemplars in prompt order."""
    with open(cot_prompts_path(), encoding="utf-8") as fh:
        prompts: dict[str, str] = json.load(fh)
    rows = []
    for subject, text in prompts.items():
        for i, block in enumerate(text.split("\n\nQ: ")[1:]):
            question, sep, answer = block.rpartition(_ANSWER)
            if not sep:
                continue
            rows.append({"id": f"{subject}-{i}", "task": f"mmlu/{subject}", "prompt": question.strip(),
                         "response": answer.strip()})
    return rows

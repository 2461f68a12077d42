"""smart_spark.report: the markdown report, the budgets chart and the console summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from smart_spark.report.console import format_console
from smart_spark.report.markdown import build_report, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STAGES = {"read": 1.5, "embed": 30.0, "weigh": 0.4, "select": 5.1, "write": 3.3}


def make_summary(**overrides: object) -> dict:
    summary = {
        "run_id": "r-test", "input": "data/sample/instructions.jsonl", "input_version": None,
        "input_rows": 1_465, "num_tasks_total": 5, "num_tasks_selected": 3, "num_instances": 1000,
        "task_fn": "fl", "instance_fn": "fl", "strata": "flan", "partition_size": 20000, "seed": 23,
        "mixture_rows": 1000, "stage_seconds": dict(STAGES),
        "embed_stats": {"texts": 1465, "cache_hits": 400, "embedded": 1065}, "output": "out/test",
    }
    summary.update(overrides)
    return summary


def make_weights() -> pd.DataFrame:
    """N' = 1000. The first pick gets 995 before capping (99.5%), is capped at its size 400 (40%); the 595
    excess cycles over the other two: copa fills up to its size 15 (13 units), snli takes the other 582."""
    rows = [
        ("gsm8k_math", True, 0, 120.5, 0.995, 995, 400, 400,
         {"zs_opt": 100, "zs_noopt": 100, "fs_opt": 100, "fs_noopt": 100}),
        ("snli", True, 1, 3.25, 0.003, 3, 585, 800,
         {"zs_opt": 150, "zs_noopt": 146, "fs_opt": 145, "fs_noopt": 144}),
        ("copa", True, 2, 1.125, 0.002, 2, 15, 15, {"fs_opt": 8, "fs_noopt": 7}),
        ("trec", False, None, None, None, 0, 0, 150, None),
        ("winogrande", False, None, None, None, 0, 0, 100, None),
    ]
    cols = ["task", "selected", "pick_rank", "gain", "weight", "initial_budget", "budget", "task_size",
            "stratum_budgets"]
    frame = pd.DataFrame(rows, columns=cols)
    frame.insert(0, "run_id", "r-test")
    # the job's frame: unselected tasks first in input order would be fine too; shuffle to test the sort
    return frame.iloc[[3, 2, 0, 4, 1]].reset_index(drop=True)


def balanced_weights() -> pd.DataFrame:
    frame = make_weights()
    frame.loc[frame["task"] == "gsm8k_math", ["initial_budget", "budget", "weight"]] = [400, 400, 0.4]
    frame.loc[frame["task"] == "snli", ["initial_budget", "budget", "weight"]] = [585, 585, 0.585]
    frame.loc[frame["task"] == "copa", ["initial_budget", "budget", "weight"]] = [15, 15, 0.015]
    return frame


def test_table_rows_in_pick_order() -> None:
    md = build_report(make_summary(), make_weights())
    rows = [
        "| 0 | `gsm8k_math` | 120.5 | 99.50% | 995 | 400 (capped; whole task) | 400 | "
        "fs_noopt 100, fs_opt 100, zs_noopt 100, zs_opt 100 |",
        "| 1 | `snli` | 3.25 | 0.30% | 3 | 585 | 800 | fs_noopt 144, fs_opt 145, zs_noopt 146, zs_opt 150 |",
        "| 2 | `copa` | 1.125 | 0.20% | 2 | 15 (whole task) | 15 | fs_noopt 7, fs_opt 8 |",
    ]
    for row in rows:
        assert row in md
    positions = [md.index(row) for row in rows]
    assert positions == sorted(positions)
    assert "| pick | task | gain | weight | initial budget | budget | size | per-stratum budgets |" in md


def test_header_lines() -> None:
    md = build_report(make_summary(input_version=7), make_weights())
    assert md.startswith("# SMART mixture report: run `r-test`\n")
    assert "`data/sample/instructions.jsonl` (Delta version 7): 1,465 rows in 5 tasks" in md
    assert "**Tasks kept:** 3 of 5 (M' of M)" in md
    assert "N' = 1,000; mixture rows written: 1,000" in md
    assert "stage 1 (tasks) `fl`, stage 2 (instances) `fl`; strata: `flan`" in md
    assert "1,465 texts, 400 from the cache, 1,065 embedded" in md
    assert "(no table version)" in build_report(make_summary(), make_weights())


def test_first_pick_shares_and_warning() -> None:
    md = build_report(make_summary(), make_weights())
    # 995 / 1000 before capping, 400 / 1000 after
    assert ("The first-picked task, `gsm8k_math`, got 99.50% of N' before capping (995 of 1,000) and 40.00% "
            "after (400 of 1,000; its size is 400).") in md
    assert "Warning: one task took 99.50% of the budget (before capping)" in md
    assert "published SMART behaviour" in md
    assert "Even after capping" not in md


def test_warning_when_still_dominant_after_capping() -> None:
    frame = make_weights()
    frame.loc[frame["task"] == "gsm8k_math", ["budget", "task_size"]] = [960, 2000]
    frame.loc[frame["task"] == "snli", "budget"] = 25
    md = build_report(make_summary(), frame)
    assert "96.00% after (960 of 1,000; its size is 2,000)" in md
    assert "Even after capping, this task holds more than half of the mixture." in md


def test_no_warning_when_balanced() -> None:
    md = build_report(make_summary(), balanced_weights())
    assert "got 40.00% of N' before capping (400 of 1,000) and 40.00% after" in md
    assert "Warning" not in md
    assert "Tasks capped at their size: **0** of 3." in md


def test_capped_count_stages_chart_and_unselected() -> None:
    md = build_report(make_summary(), make_weights())
    assert "Tasks capped at their size: **1** of 3 (`gsm8k_math`)." in md
    assert "Tasks taken whole (final budget = size): **2** of 3 (`gsm8k_math`, `copa`)." in md
    for line in ("| read | 1.5 |", "| embed | 30.0 |", "| weigh | 0.4 |", "| select | 5.1 |",
                 "| write | 3.3 |", "| **total** | **40.3** |"):
        assert line in md
    assert "![Budgets and sizes by task in pick order, and shares by family](budgets.png)" in md
    assert "## Tasks not selected (2)\n\n`trec`, `winogrande`." in md


def test_without_strata_or_embeddings() -> None:
    frame = make_weights()
    frame["stratum_budgets"] = None
    md = build_report(make_summary(strata=None, embed_stats=None), frame)
    assert "per-stratum budgets" not in md
    assert "| 0 | `gsm8k_math` | 120.5 | 99.50% | 995 | 400 (capped; whole task) | 400 |\n" in md
    assert "strata: none" in md
    assert "precomputed (`--embedding-col`)" in md


def test_stratum_budgets_as_pairs() -> None:
    """Arrow returns map columns as lists of (key, value) pairs; they render like dicts."""
    frame = make_weights()
    frame["stratum_budgets"] = [list(d.items()) if d else None for d in frame["stratum_budgets"]]
    assert build_report(make_summary(), frame) == build_report(make_summary(), make_weights())


def test_many_unselected_are_truncated() -> None:
    extra = [{"run_id": "r-test", "task": f"task_{i:03d}", "selected": False, "pick_rank": None, "gain": None,
              "weight": None, "initial_budget": 0, "budget": 0, "task_size": 10, "stratum_budgets": None}
             for i in range(60)]
    md = build_report(make_summary(), pd.DataFrame(make_weights().to_dict("records") + extra))
    assert "## Tasks not selected (62)" in md
    assert ", and 22 more." in md


def test_console() -> None:
    text = format_console(make_summary(report_path="out/test/report.md"), make_weights())
    assert "SMART run r-test: kept 3 of 5 tasks, N' = 1,000, mixture rows 1,000" in text
    assert "first pick gsm8k_math: 99.50% of N' before capping, 40.00% after" in text
    assert "  WARNING: one task dominates the weights (published SMART behaviour with raw gains; see the " \
           "report)" in text.splitlines()
    assert "tasks capped at their size: 1; taken whole: 2" in text
    assert "read 1.5, embed 30.0, weigh 0.4, select 5.1, write 3.3 (total 40.3)" in text
    assert "report out/test/report.md" in text
    assert len(text.splitlines()) <= 10
    assert "WARNING" not in format_console(make_summary(), balanced_weights())


def _check_png(path: Path) -> tuple[int, int]:
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(str(path))
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    return img.shape[0], img.shape[1]


def test_write_report(tmp_path: Path) -> None:
    md_path, png_path = write_report(str(tmp_path / "out"), make_summary(), make_weights())
    assert Path(md_path) == tmp_path / "out" / "report.md"
    assert Path(png_path) == tmp_path / "out" / "budgets.png"
    assert Path(md_path).read_text(encoding="utf-8") == build_report(make_summary(), make_weights())
    height, width = _check_png(Path(png_path))
    assert width >= 800 and height >= 200


def test_write_report_chart_name_and_many_tasks(tmp_path: Path) -> None:
    n = 70
    frame = pd.DataFrame({
        "task": [f"task_{i:02d}" for i in range(n)], "selected": True, "pick_rank": list(range(n)),
        "gain": [float(n - i) for i in range(n)], "weight": [1.0 / n] * n,
        "initial_budget": [30 - i // 3 for i in range(n)], "budget": [30 - i // 3 for i in range(n)],
        "task_size": 100, "stratum_budgets": None,
    })
    summary = make_summary(num_tasks_total=n, num_tasks_selected=n, num_instances=int(frame["budget"].sum()))
    md_path, png_path = write_report(str(tmp_path), summary, frame, chart_name="chart.png")
    assert Path(png_path).name == "chart.png"
    assert "](chart.png)" in Path(md_path).read_text(encoding="utf-8")
    height, _ = _check_png(Path(png_path))
    assert height < 2000  # 50 bars at most


def test_nothing_selected(tmp_path: Path) -> None:
    frame = make_weights()
    frame["selected"] = False
    frame["pick_rank"] = None
    md = build_report(make_summary(num_tasks_selected=0), frame)
    assert "No task was selected." in md
    assert "Tasks capped at their size: **0** of 0." in md
    _, png = write_report(str(tmp_path), make_summary(num_tasks_selected=0), frame)
    _check_png(Path(png))


def test_legend_explains_the_terms() -> None:
    md = build_report(make_summary(), make_weights())
    legend = md[md.index("## How to read this report"):md.index("## Share of the first-picked task")]
    for term in ("**gain**", "**weight**", "Taylor softmax", "**initial budget**", "floor(N' × weight)",
                 "**capped**", "**whole task**", "**rows and texts**", "distinct"):
        assert term in legend, term


def family_weights(n_families: int = 3, per_family: int = 4, kept_family: int = 0) -> pd.DataFrame:
    """Tasks named ``fam<k>/sub<j>``; family ``kept_family`` gets most of N' = 100 * kept tasks."""
    rows, rank = [], 0
    for k in range(n_families):
        for j in range(per_family):
            selected = k == kept_family or j == 0
            budget = (300 if k == kept_family else 50) if selected else 0
            rows.append({"run_id": "r", "task": f"fam{k}/sub{j}" if k % 2 == 0 else f"fam{k}:sub{j}",
                         "selected": selected, "pick_rank": rank if selected else None,
                         "gain": 1.0 if selected else None, "weight": 0.1 if selected else None,
                         "initial_budget": budget, "budget": budget, "task_size": 1000,
                         "stratum_budgets": None})
            rank += int(selected)
    return pd.DataFrame(rows)


def test_view_by_family_from_task_name_prefixes() -> None:
    frame = family_weights()
    n_prime = int(frame["budget"].sum())  # 4 * 300 + 2 * 50 = 1,300
    md = build_report(make_summary(num_instances=n_prime, num_tasks_total=12, num_tasks_selected=6), frame)
    section = md[md.index("## By family"):md.index("## Budgets chart")]
    assert "the task name's prefix before the first `/` or `:`" in section
    assert "| `fam0` | 4 | 4 | 66.67% | 1,200 | 92.31% |" in section
    assert "| `fam1` | 4 | 1 | 16.67% | 50 | 3.85% |" in section  # fam1:sub0 (':' separates too)
    assert section.index("`fam0`") < section.index("`fam1`") < section.index("`fam2`")
    text = format_console(make_summary(num_instances=n_prime), frame)
    assert "largest families (3 in all): fam0 92.31% of N' (4 of 4 tasks)" in text


def test_view_by_family_from_group_col() -> None:
    frame = make_weights()
    families = {"gsm8k_math": "math", "snli": "nli", "copa": "nli", "trec": "qa", "winogrande": "nli"}
    md = build_report(make_summary(group_col="submixture"), frame, families=families)
    section = md[md.index("## By family"):md.index("## Budgets chart")]
    assert "the `--group-col` `submixture` value" in section
    assert "| `nli` | 3 | 2 | 66.67% | 600 | 60.00% |" in section
    assert "| `math` | 1 | 1 | 33.33% | 400 | 40.00% |" in section
    assert "| `qa` | 1 | 0 | 0.00% | 0 | 0.00% |" in section
    # no families among plain task names: said in one line, no table
    plain = build_report(make_summary(), frame)
    assert "Every task is its own family here" in plain[plain.index("## By family"):]


def test_thousand_tasks_are_bounded(tmp_path: Path) -> None:
    """1,200 tasks in 60 families, 1,000 kept: every kept task is in the table; the family table, the
    chart and the console summary stay bounded."""
    n = 1200
    frame = pd.DataFrame({
        "run_id": "r", "task": [f"family_{i % 60:02d}/task_{i:04d}" for i in range(n)],
        "selected": [i < 1000 for i in range(n)],
        "pick_rank": [i if i < 1000 else None for i in range(n)],
        "gain": [1000.0 - i if i < 1000 else None for i in range(n)],
        "weight": [0.001 if i < 1000 else None for i in range(n)],
        "initial_budget": [20 if i < 1000 else 0 for i in range(n)],
        "budget": [20 if i < 1000 else 0 for i in range(n)], "task_size": 20, "stratum_budgets": None,
    })
    summary = make_summary(num_tasks_total=n, num_tasks_selected=1000, num_instances=20_000,
                           mixture_rows=20_000)
    md_path, png_path = write_report(str(tmp_path), summary, frame)
    md = Path(md_path).read_text(encoding="utf-8")
    kept_rows = [line for line in md.splitlines() if line.startswith("| ") and "/task_" in line]
    assert len(kept_rows) == 1000  # the kept tasks' table in full
    assert "Tasks taken whole (final budget = size): **1000** of 1000." in md
    section = md[md.index("## By family"):md.index("## Budgets chart")]
    assert "the first 30 of 60 families shown" in section
    assert "| 30 more families |" in section
    assert len(section.splitlines()) < 45
    height, _ = _check_png(Path(png_path))
    assert height < 3000
    assert len(format_console(summary, frame).splitlines()) <= 11

"""databricks.yml, the Declarative Automation Bundle: its structure (a JSON schema), its smart-mixture
parameters (rendered from the job's settings, parsed by the job's own command line), its clusters."""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import shutil
import subprocess
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

from smart_spark.cli.bundle import as_yaml, load_jobs, main, render_parameters
from smart_spark.cli.settings import load_config, make_config
from smart_spark.delta.delta_io import output_tables
from smart_spark.errors import SmartError

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = yaml.safe_load((ROOT / "databricks.yml").read_text(encoding="utf-8"))
SCHEMA = json.loads((ROOT / "conf/schema/bundle.schema.json").read_text(encoding="utf-8"))
SETTINGS = load_jobs(str(ROOT / "conf/bundle.yaml"))
JOBS = BUNDLE["resources"]["jobs"]
RUN_ID = "734017"  # what Databricks puts for {{job.run_id}}


def entry_point(task: dict) -> str | None:
    return task.get("python_wheel_task", {}).get("entry_point")


def wheel_task(job: str, script: str) -> dict:
    """The one task of ``job`` that runs the wheel's console script ``script``."""
    (task,) = [t for t in JOBS[job]["tasks"] if entry_point(t) == script]
    return task


def resolve(text: str, target: str, job: str) -> str:
    """``text`` with the bundle's ``${...}`` and the job's ``{{...}}`` references filled in, as deployed to
    ``target`` and run with the job parameters' defaults."""
    variables = {name: v.get("default") for name, v in BUNDLE["variables"].items()}
    variables |= BUNDLE["targets"][target].get("variables", {})
    known = {f"var.{k}": v for k, v in variables.items()}
    known |= {"bundle.target": target, "bundle.name": BUNDLE["bundle"]["name"], "job.run_id": RUN_ID}
    known |= {f"job.parameters.{p['name']}": p["default"] for p in JOBS[job].get("parameters", [])}
    for _ in range(3):  # a job parameter's default may itself be a ${var...}
        text = re.sub(r"\$\{([^}]+)\}|\{\{([^}]+)\}\}", lambda m: str(known[m[1] or m[2]]), text)
    return text


def errors(schema: dict, doc: dict, validator=Draft202012Validator) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(doc)]


# --- structure ------------------------------------------------------------------------------------


def test_bundle_follows_the_schema():
    Draft202012Validator.check_schema(SCHEMA)
    assert errors(SCHEMA, BUNDLE) == []


DROP = object()


def changed(*path, value) -> dict:
    """A copy of the bundle with the item at ``path`` set to ``value`` (appended at "+", dropped for DROP)."""
    doc = copy.deepcopy(BUNDLE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is DROP:
        del node[path[-1]]
    elif path[-1] == "+":
        node.append(value)
    else:
        node[path[-1]] = value
    return doc


CLUSTER = ("resources", "jobs", "smart_mixture", "job_clusters", 0, "new_cluster")
TASK = ("resources", "jobs", "smart_mixture", "tasks", 0)


@pytest.mark.parametrize(("doc", "valid"), [
    (changed(*CLUSTER, "num_workers", value="${var.num_workers}"), True),  # a whole reference for an int
    (changed(*CLUSTER, "num_workers", value="${bundle.target}"), True),
    (changed(*CLUSTER, "num_workers", value="two"), False),
    (changed(*CLUSTER, "num_workers", value="${foo.bar}"), False),  # not a reference the bundle knows
    (changed(*CLUSTER, "num_workers", value="2 x ${var.num_workers}"), False),  # not a whole reference
    (changed(*CLUSTER, "spark_conf", value="${var.spark_conf}"), True),  # a complex variable
    (changed(*CLUSTER, "spark_conf", "spark.sql.shuffle.partitions", value=200), False),  # strings only
    (changed(*TASK, "python_wheel_task", "parameters", "+", value=5), False),  # here too
    (changed(*TASK, "python_wheel_task", "entry_point", value=DROP), False),
    (changed(*TASK, "python_wheel_task", "extra", value="x"), False),
    (changed(*TASK, "max_retries", value="${var.retries}"), True),
    (changed("resources", "jobs", "smart_mixture", "schedule", "pause_status", value="OFF"), False),
    (changed("resources", "jobs", "smart_mixture", "parameters", 0, "default", value=100000), False),
    (changed("targets", "dev", "mode", value="dev"), False),
])
def test_schema_checks_references_and_types(doc, valid):
    assert (errors(SCHEMA, doc) == []) is valid


def published_schema() -> dict | None:
    """The bundle schema the Databricks CLI publishes (``databricks bundle schema``), when installed, or
    the file named by DATABRICKS_BUNDLE_SCHEMA."""
    if os.environ.get("DATABRICKS_BUNDLE_SCHEMA"):
        return json.loads(Path(os.environ["DATABRICKS_BUNDLE_SCHEMA"]).read_text(encoding="utf-8"))
    if shutil.which("databricks"):
        done = subprocess.run(["databricks", "bundle", "schema"], capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return json.loads(done.stdout)
    return None


def test_bundle_follows_the_published_schema():
    schema = published_schema()
    if schema is None:
        pytest.skip("no Databricks CLI (databricks bundle schema) and no DATABRICKS_BUNDLE_SCHEMA file")
    regex = pytest.importorskip("regex")  # its patterns use \p{L}, which Python's re does not know

    def pattern(validator, patrn, instance, schema):
        if validator.is_type(instance, "string") and not regex.search(patrn, instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    assert errors(schema, BUNDLE, validators.extend(Draft202012Validator, {"pattern": pattern})) == []


# --- parameters -----------------------------------------------------------------------------------


def test_mixture_parameters_are_rendered_from_conf():
    runs_mixture = {job for job, spec in JOBS.items()
                    if any(entry_point(t) == "smart-mixture" for t in spec["tasks"])}
    assert runs_mixture == set(SETTINGS)
    for job, settings in SETTINGS.items():
        expected = render_parameters(settings)
        assert wheel_task(job, "smart-mixture")["python_wheel_task"]["parameters"] == expected, (
            f"databricks.yml's {job} differs from conf/bundle.yaml; its parameters are:\n{as_yaml(expected)}")


@pytest.mark.parametrize("target", sorted(BUNDLE["targets"]))
@pytest.mark.parametrize("job", sorted(SETTINGS))
def test_mixture_parameters_parse_with_the_job_command_line(target, job):
    """With the references filled in, the job's own command line reads the settings of conf/bundle.yaml."""
    parameters = wheel_task(job, "smart-mixture")["python_wheel_task"]["parameters"]
    config = load_config([resolve(p, target, job) for p in parameters])
    settings = {k: resolve(v, target, job) if isinstance(v, str) else v for k, v in SETTINGS[job].items()}
    assert config == make_config(settings)
    assert config.run_id == f"smart-{RUN_ID}"
    output_tables(config.output)  # the job's own check of --output's spelling, before Spark starts


@pytest.mark.parametrize("job", sorted(SETTINGS))
def test_export_reads_the_run_the_mixture_wrote(job):
    """The export task parses with smart-export's own parser and reads the mixture task's output and run."""
    (script,) = [ep for ep in distribution("smart_spark").entry_points
                 if ep.group == "console_scripts" and ep.name == "smart-export"]
    parser = importlib.import_module(script.module).build_parser()
    export, mixture = wheel_task(job, "smart-export"), wheel_task(job, "smart-mixture")
    args = parser.parse_args([resolve(p, "prod", job) for p in export["python_wheel_task"]["parameters"]])
    config = load_config([resolve(p, "prod", job) for p in mixture["python_wheel_task"]["parameters"]])
    assert (args.output, args.run_id) == (config.output, config.run_id)
    assert args.dest.endswith(f"/smart-{RUN_ID}") and args.shards == 16  # each run its own folder
    assert export["depends_on"] == [{"task_key": mixture["task_key"]}]


def test_tasks_run_the_wheel_of_this_package():
    (artifact,) = BUNDLE["artifacts"].values()
    assert artifact["type"] == "whl" and "--wheel-dir dist" in artifact["build"]
    scripts = {ep.name for ep in distribution("smart_spark").entry_points if ep.group == "console_scripts"}
    for spec in JOBS.values():
        for task in spec["tasks"]:
            wheel = task["python_wheel_task"]
            assert wheel["package_name"] == "smart_spark" and wheel["entry_point"] in scripts
            assert task["libraries"] == [{"whl": f"{artifact['path']}/dist/*.whl"}]


# --- clusters, schedule, variables, targets --------------------------------------------------------


def test_gpu_job_gives_each_mixture_task_a_gpu_and_the_cpu_job_none():
    for job, spec in JOBS.items():
        clusters = {c["job_cluster_key"]: c["new_cluster"] for c in spec["job_clusters"]}
        for task in spec["tasks"]:
            cluster = clusters[task["job_cluster_key"]]
            conf = {k: resolve(v, "prod", job) for k, v in cluster.get("spark_conf", {}).items()}
            gpus = {k.split(".")[1]: v for k, v in conf.items() if k.endswith(".resource.gpu.amount")}
            runtime = resolve(cluster["spark_version"], "prod", job)
            if job.endswith("_gpu") and entry_point(task) == "smart-mixture":
                assert "-gpu-ml-" in runtime and gpus == {"executor": "1", "task": "1"}
            else:
                assert "gpu" not in runtime and gpus == {}
        tasks = {t["task_key"] for t in spec["tasks"]}
        assert {d["task_key"] for t in spec["tasks"] for d in t.get("depends_on", [])} <= tasks


def test_schedules_are_paused_and_variables_all_used():
    schedules = [spec["schedule"] for spec in JOBS.values() if "schedule" in spec]
    assert schedules and all(s["pause_status"] == "PAUSED" for s in schedules)
    used = set(re.findall(r"\$\{var\.(\w+)\}", (ROOT / "databricks.yml").read_text(encoding="utf-8")))
    assert used == set(BUNDLE["variables"])


def test_targets_dev_and_prod():
    targets = BUNDLE["targets"]
    assert (targets["dev"]["mode"], targets["dev"]["default"], targets["prod"]["mode"]) == (
        "development", True, "production")
    assert "${workspace.current_user.userName}" in targets["prod"]["workspace"]["root_path"]


# --- the renderer ----------------------------------------------------------------------------------


def test_rendered_parameters_parse_back_to_the_same_settings():
    settings = {"input": "in.jsonl", "output": "out", "num_instances": [100, 200], "num_tasks": [8, "all"],
                "report": False, "quiet": True, "verbose": False, "strategy": "fixed", "group_col": "g",
                "group_weights": {"a": 40, "b": 2.5}, "gc_lambda": 0.25, "id_col": None, "run_id": "r1"}
    parameters = render_parameters(settings)
    assert "--no-report" in parameters and "--quiet" in parameters and "--verbose" not in parameters
    assert parameters[parameters.index("--group-weights") + 1] == "a=40,b=2.5"
    assert load_config(parameters) == make_config(settings)


def test_switches_at_their_default_render_nothing():
    assert render_parameters({"report": True, "quiet": False, "model": None}) == []


@pytest.mark.parametrize(("settings", "message"), [
    ({"num_instance": 5}, "unknown setting"),
    ({"report": "no"}, "--report takes a switch"),
    ({"num_instances": True}, "--num-instances takes a value"),
])
def test_bad_settings_name_the_flag(settings, message):
    with pytest.raises(SmartError, match=message):
        render_parameters(settings)


def test_printed_lists_are_yaml_of_the_parameters(capsys, tmp_path):
    assert main([str(ROOT / "conf/bundle.yaml")]) == 0
    printed = capsys.readouterr().out
    for job, settings in SETTINGS.items():
        block = printed.split(f"# resources.jobs.{job}, task running smart-mixture:\n")[1].split("\n#")[0]
        assert yaml.safe_load(block) == {"parameters": render_parameters(settings)}
    bad = tmp_path / "bundle.yaml"
    bad.write_text("smart_mixture: [1, 2]\n")
    assert main([str(bad)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0

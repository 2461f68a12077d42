"""Job settings as the ``parameters`` of a Databricks ``python_wheel_task`` (``databricks.yml``).

The list is rendered from the flags' own declaration (:mod:`smart_spark.cli.settings`): the flag names,
the switches (``--no-report``), lists and weights spelled as the command line reads them. Values may hold
bundle references (``${var.catalog}``) and job references (``{{job.run_id}}``), which Databricks fills in.
``python -m smart_spark.cli.bundle conf/bundle.yaml`` prints each job's list for ``databricks.yml``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from smart_spark.cli.settings import declared, flag, is_switch, switch
from smart_spark.errors import SmartError


def render_parameters(settings: Mapping[str, Any]) -> list[str]:
    """``{"num_tasks": 8, "report": False}`` -> ``["--num-tasks", "8", "--no-report"]``, in the mapping's
    order; a switch at its default and a value of None give nothing."""
    fields = {f.name: f for f in declared()}
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise SmartError(f"unknown setting(s) {', '.join(map(str, unknown))} (known: {', '.join(fields)})")
    parameters: list[str] = []
    for name, value in settings.items():
        f = fields[name]
        if value is None:
            continue
        if is_switch(f) != isinstance(value, bool):
            kind = "a switch: true or false" if is_switch(f) else "a value, not a switch"
            raise SmartError(f"{flag(name)} takes {kind}, got {value!r}")
        if is_switch(f):
            parameters += [switch(f, value)] if value != f.default else []
        else:
            parameters += [flag(name), spell(value)]
    return parameters


def spell(value: Any) -> str:
    """A setting's value as its flag reads it: lists comma-separated, mappings as ``name=value,...``."""
    if isinstance(value, Mapping):
        return ",".join(f"{k}={spell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(spell(v) for v in value)
    return str(value)


def load_jobs(path: str) -> dict[str, dict[str, Any]]:
    """The YAML file of job key -> settings (``conf/bundle.yaml``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            jobs = yaml.safe_load(fh)
    except OSError as exc:
        raise SmartError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SmartError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(jobs, dict) or not all(isinstance(s, dict) for s in jobs.values()):
        raise SmartError(f"{path} must map each job key to a mapping of settings")
    return jobs


def as_yaml(parameters: Sequence[str], indent: int = 12) -> str:
    """``parameters: [...]`` as databricks.yml writes it: a flag and its value on each line."""
    lines: list[list[str]] = []
    for item in parameters:
        if item.startswith("--") or not lines:
            lines.append([])
        lines[-1].append(json.dumps(item))
    body = (",\n" + " " * (indent + 2)).join(", ".join(line) for line in lines)
    return " " * indent + "parameters: [\n" + " " * (indent + 2) + body + "]"


def main(argv: Sequence[str] | None = None) -> int:
    """Print each job's parameters (``conf/bundle.yaml`` by default); one error line and 2 on bad input."""
    args = list(sys.argv[1:] if argv is None else argv)
    path = args[0] if args else "conf/bundle.yaml"
    try:
        rendered = {job: render_parameters(settings) for job, settings in load_jobs(path).items()}
    except SmartError as exc:
        print(f"bundle: error: {exc}", file=sys.stderr)
        return 2
    for job, parameters in rendered.items():
        print(f"# resources.jobs.{job}, task running smart-mixture:\n{as_yaml(parameters)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

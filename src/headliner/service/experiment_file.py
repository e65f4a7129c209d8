"""Read a new experiment from a YAML file (``headliner experiments create --from FILE``).

A scenario file written for the simulator (:mod:`headliner.sim.scenarios`,
e.g. ``scenarios/reference.yaml``) works as it is: its ``headlines`` (strings,
or mappings with a ``text``/``headline``/``name`` key) and ``priors`` become
the experiment's, and keys only the simulator uses (true open rates, seeds,
iterations, its list of policies) are ignored. The simulator's own loader is
not reused because it rejects the service's keys, which are the point here.
A plan (``headliner plan``'s scenario: ``open_rates`` or ``baseline_rate``,
``list_size``, ``waves``, ...) or a simulator scenario with a ``campaign:``
section creates the experiment that plan describes (its headlines, policy,
priors, window, burn-in, floor, stopping rule and delay prior), and the plan's
inputs are stored with it: what was planned is what runs.

Otherwise an optional ``experiment:`` mapping holds the service's settings and
wins over top-level keys of the same name::

    name: Spring sale
    headlines:
      - 48 Hours Only: Save 25%
      - Ending Tonight: Final Chance to Save
    experiment:
      policy: thompson
      kpi: clicks          # opens (default), clicks or conversions
      attribution_window_seconds: 259200
      burn_in_per_arm: 100
      stopping: {p_best_threshold: 0.99, min_opens: 200}
      delay_prior: {median_seconds: 7200, p95_seconds: 86400}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from headliner.core.errors import InvalidParameterError
from headliner.service.schemas import ExperimentCreate
from headliner.sim.plan import PlanSpec, load_plan
from headliner.storage.base import ExperimentSpec

_HEADLINE_KEYS = ("headline", "text", "name", "subject")


def _headline_text(item: object) -> object:
    if isinstance(item, dict):
        for key in _HEADLINE_KEYS:
            if key in item:
                return item[key]
    return item


def spec_from_mapping(data: dict[str, Any], *, default_name: str) -> ExperimentSpec:
    """Validate a mapping shaped like the file format above and build the spec."""
    settings: dict[str, Any] = {k: v for k, v in data.items() if k in ExperimentCreate.model_fields}
    if not isinstance(settings.get("policy"), str):
        # A simulator's list of policies to compare is not the service's to judge; one
        # named policy is meant for the experiment, and an unknown one is refused below
        # (rather than silently running Thompson Sampling).
        settings.pop("policy", None)
    priors = data.get("priors")
    if isinstance(priors, dict):  # the simulator's scenario files nest the prior here
        settings.update({k: v for k, v in priors.items() if k in ("alpha_prior", "beta_prior")})
    nested = data.get("experiment") or {}
    if not isinstance(nested, dict):
        raise InvalidParameterError("The 'experiment' key of the file must be a mapping.")
    settings.update(nested)
    headlines = settings.get("headlines", data.get("arms"))
    if isinstance(headlines, list):
        settings["headlines"] = [_headline_text(item) for item in headlines]
    settings.setdefault("name", default_name)
    try:
        draft = ExperimentCreate.model_validate(settings)
    except ValidationError as exc:
        raise InvalidParameterError(f"Invalid experiment file: {_every_error(exc)}.") from None
    return draft.to_spec()


def _every_error(exc: ValidationError) -> str:
    """Every problem of a file on one line, ``key.path: message; ...`` (not only the first)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
        for error in exc.errors()
    )


#: Keys that make a file a plan: the campaign it describes, not only its headlines.
_PLAN_KEYS = frozenset(
    ("campaign", "open_rates", "baseline_rate", "best_lift", "list_size", "daily_volume")
)


def is_plan(data: dict[str, Any]) -> bool:
    """Whether a file's mapping is a plan (or a scenario with a campaign) rather than settings."""
    return "experiment" not in data and not _PLAN_KEYS.isdisjoint(data)


def spec_from_plan(plan: PlanSpec) -> ExperimentSpec:
    """The experiment a plan describes, with the plan's inputs stored beside it."""
    settings = {**plan.experiment_settings(), "plan": plan}
    try:
        return ExperimentCreate.model_validate(settings).to_spec()
    except ValidationError as exc:
        message = f"The plan cannot run as an experiment: {_every_error(exc)}."
        raise InvalidParameterError(message) from None


def load_experiment_file(path: Path) -> ExperimentSpec:
    """Read ``path`` (YAML) and return the validated :class:`ExperimentSpec`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidParameterError(f"Cannot read {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise InvalidParameterError(f"{path} is not valid YAML{where}: {problem}.") from None
    if not isinstance(data, dict):
        raise InvalidParameterError(f"{path} must hold a YAML mapping with 'headlines'.")
    if is_plan(data):
        return spec_from_plan(load_plan(path))
    return spec_from_mapping(data, default_name=path.stem)

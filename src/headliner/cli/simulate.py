"""``headliner simulate``: the reference experiment (or any scenario), its table and plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from headliner.core.errors import InvalidParameterError


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise InvalidParameterError(
            f"{option} must be comma-separated integers, e.g. 100,1000. Got {text!r} instead."
        ) from None
    if not values or any(v < 1 for v in values):
        raise InvalidParameterError(f"{option} must list integers >= 1. Got {text!r} instead.")
    return values


def simulate(
    scenario: Annotated[
        Path | None,
        typer.Argument(help="Scenario YAML file; the reference experiment when omitted."),
    ] = None,
    iterations: Annotated[
        str | None,
        typer.Option(help="Comma-separated horizons (send counts), e.g. 100,1000,10000."),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(min=1, help="Monte Carlo replications; > 1 adds the regret study."),
    ] = None,
    policies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated policies: thompson, uniform, ab_test, epsilon_greedy, "
            "ucb1, top_two (default: the scenario's)."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="Monte Carlo seed (default: the scenario's).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the PNG plots.")] = Path("out"),
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: table, csv or json.")
    ] = "table",
    plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
) -> None:
    """Compare Thompson Sampling with the random split and the A/B-test plan, then plot."""
    from headliner.sim.scenarios import load_scenario, reference_scenario

    if output_format not in ("table", "csv", "json"):
        raise InvalidParameterError(
            f"--format must be one of table, csv, json. Got {output_format!r} instead."
        )
    chosen = load_scenario(scenario) if scenario is not None else reference_scenario()
    horizons = _int_list(iterations, "--iterations") if iterations is not None else None
    if policies is not None:
        chosen = _with_policies(chosen, policies)
    result = _run(chosen, horizons, replications, seed)
    _print(result, output_format)
    if plots:
        from headliner.report.plots import write_study_plots

        for path in write_study_plots(result, out):
            print(f"wrote {path}", file=sys.stderr)


def _with_policies(scenario: Any, names: str) -> Any:
    from headliner.sim.scenarios import parse_scenario

    entries = [name.strip() for name in names.split(",") if name.strip()]
    kept = {spec.name: spec for spec in scenario.policies}
    # Keep a policy's scenario settings (the A/B plan's size) when it is named again.
    policies = [kept[name].model_dump() if name in kept else name for name in entries]
    data = scenario.model_dump()
    data["policies"] = policies
    return parse_scenario(data, source="--policies")


def _run(
    scenario: Any, horizons: list[int] | None, replications: int | None, seed: int | None
) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from headliner.sim.study import run_study

    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return run_study(
            scenario,
            iterations=horizons,
            replications=replications,
            monte_carlo_seed=seed,
            progress=progress,
        )


def _print(result: Any, output_format: str) -> None:
    from headliner.report.tables import format_comparison, format_monte_carlo, render

    if output_format == "csv":
        print(result.comparison.to_csv(index=False), end="")
        return
    if output_format == "json":
        document: dict[str, Any] = {
            "scenario": result.scenario.name,
            "comparison": json.loads(result.comparison.to_json(orient="records")),
        }
        if result.monte_carlo is not None:
            summary = result.monte_carlo.summary()
            document["monte_carlo"] = {
                "seed": result.monte_carlo.seed,
                "replications": result.monte_carlo.n_replications,
                "summary": json.loads(summary.to_json(orient="records")),
            }
        print(json.dumps(document, indent=2))
        return
    scenario = result.scenario
    best = int(scenario.true_probabilities.argmax())
    print(
        f"Scenario {scenario.name}: {scenario.n_arms} headlines; best is "
        f'"{scenario.headline_texts[best]}" at {100 * scenario.true_probabilities[best]:.2f}%'
    )
    print()
    print(render(format_comparison(result.comparison)))
    if result.monte_carlo is not None:
        mc = result.monte_carlo
        print()
        print(f"Monte Carlo: {mc.n_replications} replications, seed {mc.seed}")
        print(render(format_monte_carlo(mc.summary(), result.iterations)))


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the root app."""
    app.command("simulate")(simulate)

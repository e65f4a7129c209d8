"""``headliner simulate``: the reference experiment (or any scenario), its tables and plots.

A scenario with ``iterations`` runs the seed comparison (and the Monte Carlo
study); one with a ``campaign:`` section is simulated as a campaign served by
the decision service; a scenario with both runs and prints both.
"""

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
        typer.Option(
            help="Comma-separated horizons (send counts) of the seed comparison, "
            "e.g. 100,1000,10000 (runs it for a campaign-only scenario too)."
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Simulated campaigns when the scenario has a campaign; otherwise "
            "Monte Carlo replications (> 1 adds the regret study).",
        ),
    ] = None,
    policies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated policies: thompson, uniform, ab_test, epsilon_greedy, "
            "ucb1, top_two (default: the scenario's)."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seed of the campaign's replications when the scenario has a campaign, "
            "otherwise of the Monte Carlo (default: the scenario's monte_carlo_seed).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the PNG plots.")] = Path("out"),
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="Output format: table, csv or json. csv: the comparison's rows, or one "
            "row per simulated campaign (both tables, a blank line apart, when both run).",
        ),
    ] = "table",
    plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
) -> None:
    """Simulate a scenario: the seed comparison, or a campaign as the service would run it.

    The seed comparison runs Thompson Sampling against the random split and
    the A/B-test plan; a campaign is sent in waves or per send, with opens
    arriving hours later. Prints the tables and writes the PNG plots.
    """
    from headliner.sim.scenarios import load_scenario, reference_scenario

    if output_format not in ("table", "csv", "json"):
        raise InvalidParameterError(
            f"--format must be one of table, csv, json. Got {output_format!r} instead."
        )
    chosen = load_scenario(scenario) if scenario is not None else reference_scenario()
    horizons = _int_list(iterations, "--iterations") if iterations is not None else None
    compare = horizons is not None or chosen.iterations is not None
    if policies is not None:
        if not compare:
            raise InvalidParameterError(
                "--policies chooses the policies of the seed comparison, which this "
                "scenario does not run: give --iterations too, or add iterations to it."
            )
        chosen = _with_policies(chosen, policies)
    # With a campaign, --replications and --seed are the campaign's.
    has_campaign = chosen.campaign is not None
    result = None
    if compare:
        result = _run(
            chosen,
            horizons,
            None if has_campaign else replications,
            None if has_campaign else seed,
        )
    campaign = _run_campaign(chosen, replications, seed) if has_campaign else None
    _print(result, campaign, output_format)
    if plots:
        from headliner.report.plots import write_campaign_plots, write_study_plots

        paths = write_study_plots(result, out) if result is not None else []
        if campaign is not None:
            paths += write_campaign_plots(campaign, out)
        for path in paths:
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


def _progress_bar() -> Any:
    """A transient rich progress bar on stderr, shown only when stderr is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    return Progress(
        *columns,
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def _run(
    scenario: Any, horizons: list[int] | None, replications: int | None, seed: int | None
) -> Any:
    from headliner.sim.study import run_study

    with _progress_bar() as bar:
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


def _run_campaign(scenario: Any, replications: int | None, seed: int | None) -> Any:
    from headliner.sim.study import run_campaign_study

    with _progress_bar() as bar:
        task = bar.add_task("campaigns", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_campaign_study(scenario, replications=replications, seed=seed, progress=progress)


def _print(result: Any, campaign: Any, output_format: str) -> None:
    from headliner.report.tables import (
        as_fractions,
        campaign_replications,
        campaign_summary,
        format_campaign,
    )

    if output_format == "csv":
        tables = [] if result is None else [as_fractions(result.comparison)]
        if campaign is not None:
            tables.append(campaign_replications(campaign))
        print("\n".join(table.to_csv(index=False) for table in tables), end="")
        return
    if output_format == "json":
        document: dict[str, Any] = {}
        if result is not None:
            document = _comparison_document(result)
        if campaign is not None:
            document.update(campaign_summary(campaign))
        print(json.dumps(document, indent=2))
        return
    if result is not None:
        _print_comparison(result)
    if campaign is not None:
        if result is not None:
            print()
        print(format_campaign(campaign))


def _comparison_document(result: Any) -> dict[str, Any]:
    from headliner.report.tables import as_fractions

    document: dict[str, Any] = {
        "scenario": result.scenario.name,
        "comparison": json.loads(as_fractions(result.comparison).to_json(orient="records")),
    }
    if result.monte_carlo is not None:
        summary = result.monte_carlo.summary()
        document["monte_carlo"] = {
            "seed": result.monte_carlo.seed,
            "replications": result.monte_carlo.n_replications,
            "summary": json.loads(as_fractions(summary).to_json(orient="records")),
        }
    return document


def _print_comparison(result: Any) -> None:
    from headliner.report.tables import format_comparison, format_monte_carlo, render

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

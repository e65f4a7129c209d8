"""``headliner plan``: will a bandit pay off for this campaign, and when will it know?

The inputs come from a plan or scenario YAML file, from options, or both (an
option overrides the file's key); they are validated as one
:class:`~headliner.sim.plan.PlanSpec`, so a bad value is one line naming the
option or key and the allowed range, and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from headliner.core.errors import InvalidParameterError

FORMATS = ("table", "json", "csv")


def _numbers(text: str, option: str) -> list[float]:
    """``"0.18, 21%"`` -> ``[0.18, 0.21]``."""
    values = []
    for part in text.split(","):
        item = part.strip()
        try:
            values.append(float(item[:-1]) / 100.0 if item.endswith("%") else float(item))
        except ValueError:
            raise InvalidParameterError(
                f"{option} must be comma-separated rates such as 0.18,0.21 or 18%,21%. "
                f"Got {text!r} instead."
            ) from None
    return values


def _number(text: str, option: str) -> float:
    """``"0.2"`` or ``"20%"`` -> 0.2."""
    values = _numbers(text, option) if "," not in text else []
    if len(values) != 1:
        raise InvalidParameterError(
            f"{option} must be one number such as 0.2 or 20%. Got {text!r} instead."
        )
    return values[0]


def _headlines(text: str) -> int | list[str]:
    """``"5"`` -> 5; ``"A, B, C"`` -> ``["A", "B", "C"]``."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    return [part.strip() for part in text.split(",")]


def plan(
    scenario: Annotated[
        Path | None,
        typer.Argument(
            help="Plan or scenario YAML file (a simulate scenario's campaign section works too); "
            "options override its keys."
        ),
    ] = None,
    headlines: Annotated[
        str | None,
        typer.Option(help="How many headlines (5), or their names (A,B,C)."),
    ] = None,
    rates: Annotated[
        str | None,
        typer.Option(help="Expected open rate of each headline: 0.18,0.21,... or 18%,21%,..."),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="Instead of --rates: every headline's open rate (0.2 or 20%) ..."),
    ] = None,
    lift: Annotated[
        str | None,
        typer.Option(help="... and the best one's relative lift over it (0.1 or 10%)."),
    ] = None,
    list_size: Annotated[int | None, typer.Option(help="Sends over the whole campaign.")] = None,
    daily_volume: Annotated[
        float | None, typer.Option(help="Instead of --list-size: sends a day ...")
    ] = None,
    length: Annotated[
        str | None, typer.Option(help="... and the campaign's length (e.g. 4d).")
    ] = None,
    waves: Annotated[int | None, typer.Option(help="Send the list in this many waves ...")] = None,
    wave_size: Annotated[
        int | None, typer.Option(help="... or in waves of this many sends ...")
    ] = None,
    every: Annotated[str | None, typer.Option(help="... one every this long (default 1h).")] = None,
    per_send_rate: Annotated[
        float | None,
        typer.Option(help="Instead of waves: one decision per send, this many sends an hour ..."),
    ] = None,
    refresh: Annotated[
        str | None, typer.Option(help="... the split refreshed every this long (default 1h).")
    ] = None,
    delay_median: Annotated[
        str | None, typer.Option(help="Half the opens arrive within this (default 2h).")
    ] = None,
    delay_p95: Annotated[
        str | None, typer.Option(help="95% of the opens arrive within this (default 24h).")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Attribution window: later opens do not count (72h).")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="thompson (default), uniform or top_two.")
    ] = None,
    burn_in: Annotated[
        int | None,
        typer.Option(help="Sends every headline gets, in evidence, before the policy (100)."),
    ] = None,
    floor: Annotated[
        float | None, typer.Option(help="Minimum share of sends per headline (0).")
    ] = None,
    stopping: Annotated[
        bool | None,
        typer.Option(help="Declare a winner by the service's stopping rule (default on)."),
    ] = None,
    replications: Annotated[
        int | None, typer.Option(help="Simulated campaigns (default 1,000).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated campaigns.")] = None,
    recommend: Annotated[
        bool,
        typer.Option(help="Search the list size, cadence and burn-in that reach 95%."),
    ] = True,
    out: Annotated[Path, typer.Option(help="Directory for the PNG plots.")] = Path("out"),
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="table, json (one object) or csv (one row per figure).",
        ),
    ] = "table",
    plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
) -> None:
    """Plan a campaign before its first send: when a winner comes, how sure, what it earns.

    Simulates the campaign as the decision service would run it (waves or
    per-send traffic, delayed opens, burn-in, stopping rule) 1,000 times by
    default, and prints the hours and sends to a decision, how often the pick
    is right, the extra opens over an even split and over an A/B test, a
    verdict, and the list size, cadence and burn-in that keep the pick within
    1% of the best 95% of the time.
    """
    if output_format not in FORMATS:
        raise InvalidParameterError(
            f"--format must be one of {', '.join(FORMATS)}. Got {output_format!r} instead."
        )
    from headliner.sim.plan import parse_plan, plan_campaign

    data, source = _file_data(scenario)
    names: dict[str, str] = {}

    def put(key: str, value: Any, option: str, *, drop: tuple[str, ...] = ()) -> None:
        if value is None:
            return
        target = data
        *parents, last = key.split(".")
        for parent in parents:
            current = target.get(parent)
            target[parent] = dict(current) if isinstance(current, dict) else {}
            target = target[parent]
        target[last] = value
        for other in drop:
            data.pop(other, None)
        names[key] = option

    if headlines is not None:
        put("headlines", _headlines(headlines), "--headlines")
    if rates is not None:
        put(
            "open_rates", _numbers(rates, "--rates"), "--rates", drop=("baseline_rate", "best_lift")
        )
    if baseline is not None:
        put("baseline_rate", _number(baseline, "--baseline"), "--baseline", drop=("open_rates",))
    if lift is not None:
        put("best_lift", _number(lift, "--lift"), "--lift", drop=("open_rates",))
    put("list_size", list_size, "--list-size", drop=("daily_volume", "campaign_length"))
    put("daily_volume", daily_volume, "--daily-volume", drop=("list_size",))
    put("campaign_length", length, "--length", drop=("list_size",))
    if waves is not None or wave_size is not None or every is not None:
        data.pop("per_send", None)
        if waves is not None or wave_size is not None:
            kept = data.get("waves")
            data["waves"] = (
                {"every": kept["every"]} if isinstance(kept, dict) and "every" in kept else {}
            )
    put("waves.count", waves, "--waves")
    put("waves.size", wave_size, "--wave-size")
    put("waves.every", every, "--every")
    if per_send_rate is not None or refresh is not None:
        data.pop("waves", None)
    put("per_send.rate_per_hour", per_send_rate, "--per-send-rate")
    put("per_send.refresh", refresh, "--refresh")
    if delay_median is not None or delay_p95 is not None:
        if data.get("open_delay") is None or isinstance(data.get("open_delay"), str):
            data["open_delay"] = {}
    put("open_delay.median", delay_median, "--delay-median")
    put("open_delay.p95", delay_p95, "--delay-p95")
    put("attribution_window", window, "--window")
    put("policy", policy, "--policy")
    put("burn_in_per_arm", burn_in, "--burn-in")
    put("floor", floor, "--floor")
    if stopping is not None:
        if not stopping:
            data["stopping"] = None
        elif not isinstance(data.get("stopping"), dict):
            data.pop("stopping", None)
        names["stopping"] = "--stopping"
    put("replications", replications, "--replications")
    put("seed", seed, "--seed")
    spec = parse_plan(data, source, names=names)

    from headliner.cli.simulate import _progress_bar

    with _progress_bar() as bar:
        task = bar.add_task("campaigns", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        planned = plan_campaign(spec, recommend=recommend, progress=progress)
    _print(planned, output_format)
    if plots:
        from headliner.report.plots import write_plan_plots

        for path in write_plan_plots(planned, out):
            print(f"wrote {path}", file=sys.stderr)


def _file_data(path: Path | None) -> tuple[dict[str, Any], str]:
    """The file's keys as a plan's (a scenario's campaign converted), or none."""
    if path is None:
        return {}, "options"
    from headliner.sim.plan import plan_of_scenario
    from headliner.sim.scenarios import parse_scenario, read_yaml

    source = str(path)
    data = read_yaml(path)
    if isinstance(data, dict) and "campaign" in data:
        spec = plan_of_scenario(parse_scenario(data, source), source)
        return spec.model_dump(mode="json", exclude_unset=True), source
    if data is None:
        return {}, source
    if not isinstance(data, dict):
        from headliner.sim.scenarios import ScenarioError

        raise ScenarioError(
            f"{source}: top level: expected a mapping of plan keys, got {type(data).__name__}"
        )
    return dict(data), source


def _print(planned: Any, output_format: str) -> None:
    from headliner.report.tables import format_plan, plan_rows

    if output_format == "json":
        print(json.dumps(planned.to_document(), indent=2))
    elif output_format == "csv":
        print(plan_rows(planned).to_csv(index=False), end="")
    else:
        print(format_plan(planned))


def register(app: typer.Typer) -> None:
    """Add ``plan`` to the root app."""
    app.command("plan")(plan)

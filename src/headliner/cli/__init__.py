"""The ``headliner`` command line: a thin layer, one library call per command.

Library errors (:class:`~headliner.core.errors.HeadlinerError`, which
includes every validation ``ValueError`` Headliner raises) become exit code 2
and one line on stderr; Typer's own usage errors exit with 2 as well.
"""

from __future__ import annotations

import sys

import click
import typer

from headliner.core.errors import HeadlinerError

app = typer.Typer(
    name="headliner",
    help="Adaptive experimentation for email headlines: simulate, then serve decisions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_commands() -> None:
    # Imported here so that `import headliner.cli` stays cheap and cycle-free.
    from headliner.cli import service, simulate

    simulate.register(app)
    service.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by the console script)."""
    try:
        app(args=argv, standalone_mode=False)
    except HeadlinerError as exc:
        print(f"headliner: error: {exc}", file=sys.stderr)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        print("headliner: aborted", file=sys.stderr)
        return 1
    return 0

"""The ``headliner`` command line: a thin layer, one library call per command.

Exit codes, for scripts and pipelines:

- 0: done;
- 1: aborted (Ctrl-C) or an unexpected failure;
- 2: a usage error (unknown option, missing argument, value out of range) or a
  domain error (:class:`~headliner.core.errors.HeadlinerError`: an invalid
  setting, an unknown experiment or key, a conflict);
- 3: the service refused to start, or the database cannot be reached;
- 4: the command needs an optional part that is not installed (the ``sim``
  extra: ``pip install 'headliner[sim]'``).

Every error is one line on stderr starting ``headliner: error:``; no traceback.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Annotated

import typer

from headliner.core.errors import HeadlinerError, StoreUnavailableError

app = typer.Typer(
    name="headliner",
    help="Adaptive experimentation for email headlines: simulate, then serve decisions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Typer raises the exceptions of the click it runs on (its own copy in recent releases,
# the click package before): find their classes through the one Typer exports.
_CLICK_ERRORS = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
ClickException: type[Exception] = _CLICK_ERRORS["ClickException"]
UsageError: type[Exception] = _CLICK_ERRORS["UsageError"]


def _show_version(value: bool) -> None:
    if value:
        print(f"headliner {version('headliner')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """Adaptive experimentation for email headlines: simulate, then serve decisions."""


def _register_commands() -> None:
    # Imported here so that `import headliner.cli` stays cheap and cycle-free.
    from headliner.cli import plan, service, simulate

    simulate.register(app)
    plan.register(app)
    service.register(app)


_register_commands()


def _usage_error(exc: Exception) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        # A bare group: its help is the answer (Typer's rich help prints itself).
        text = ctx.get_help()
        if text:
            print(text, file=sys.stderr)
        return 2
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    message = exc.format_message()  # type: ignore[attr-defined]  # a click exception
    print(f"headliner: error: {message}{where}", file=sys.stderr)
    return 2


#: Modules of the optional extras, and the extra that installs each.
_EXTRAS = {"pandas": "sim", "matplotlib": "sim"}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by the console script)."""
    try:
        code = app(args=argv, prog_name="headliner", standalone_mode=False)
    except StoreUnavailableError as exc:
        print(f"headliner: error: {exc}", file=sys.stderr)
        return 3
    except HeadlinerError as exc:
        print(f"headliner: error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        return _usage_error(exc)
    except ClickException as exc:
        print(f"headliner: error: {exc.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 1))
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"headliner: error: this command needs {exc.name}, from the {extra!r} extra: "
            f"pip install 'headliner[{extra}]'",
            file=sys.stderr,
        )
        return 4
    except (KeyboardInterrupt, typer.Abort):
        print("headliner: aborted", file=sys.stderr)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    # Without standalone mode click returns a command's exit code instead of raising it.
    return code if isinstance(code, int) else 0

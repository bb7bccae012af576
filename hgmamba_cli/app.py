"""The `hgmamba` command: a thin Typer app. Commands parse, call hgmamba_core, print with Rich.

`main()` is the console entry point: user errors become one line on stderr with a non-zero
exit code, never a traceback (set HGMAMBA_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys

import typer

from hgmamba_cli import cmd_eval, cmd_info, cmd_lift, cmd_render, cmd_train, cmd_view

app = typer.Typer(
    name="hgmamba",
    help="Video -> 3D human pose with the HGMamba lifter.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("lift")(cmd_lift.lift)
app.command("render")(cmd_render.render)
app.command("train")(cmd_train.train)
app.command("eval")(cmd_eval.evaluate)
app.command("info")(cmd_info.info)
app.command("view")(cmd_view.view)


def _fail(message: str, code: int) -> None:
    one_line = " ".join(str(message).split())
    print(f"hgmamba: error: {one_line}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    # Idle OpenMP threads that spin starve each other on a CPU shared with other jobs
    # (bench/lifter_threads.py: 2.7x lifter frames/s); read when torch loads, so set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from hgmamba_core.errors import HGMambaError

    try:
        rc = app(args=argv, standalone_mode=False)
    except HGMambaError as e:
        _fail(str(e), e.exit_code)
    except typer.Abort:
        _fail("interrupted; no partial output was kept", 130)
    except KeyboardInterrupt:
        _fail("interrupted; no partial output was kept", 130)
    except typer.TyperException as e:  # Typer's public base of its usage errors
        _fail(e.format_message(), e.exit_code)
    except MemoryError:
        _fail("out of memory: try a smaller --batch-size or a shorter clip", 1)
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if os.environ.get("HGMAMBA_DEBUG"):
            raise
        _fail(f"unexpected {type(e).__name__}: {e} (set HGMAMBA_DEBUG=1 for a traceback)", 1)
    if rc == 130:  # Typer turns Ctrl-C into a return code without a message
        _fail("interrupted; no partial output was kept", 130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()

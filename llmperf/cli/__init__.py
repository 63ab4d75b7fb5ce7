"""The ``llmperf`` command line: thin typer commands over llmperf's DataFrame functions.

    llmperf list models|hardware
    llmperf estimate -m llama-3.1-8b -g h100-sxm [--batch 8 --prompt 2k --output 256 ...]
    llmperf memory   -m llama-3.1-8b -g h100-sxm --batch 1,8,64 --context 8k,32k
    llmperf sweep    -m llama-3.1-8b,qwen3-8b -g h100-sxm,h200 --batch 1,8,64 --context 1k,8k --out grid.csv
    llmperf compare  -m llama-3.1-70b -g h100-sxm,h200,mi300x --tp 2
    llmperf roofline -m llama-3.1-8b -g h100-sxm --phase decode --out roofline.png
    llmperf plot breakdown|memory|frontier ... --out FILE.png

Every command takes ``--format table|csv|json`` and ``--out FILE``. User errors print one line
``error: <message>`` on stderr and exit with code 2. Importing this package imports neither
matplotlib nor torch/triton; the plotting commands import :mod:`llmperf.plot` when they run.
"""

import sys

import typer
from typer.core import TyperGroup

from llmperf.cli._common import USER_ERROR, one_line

# typer >= 0.20 vendors click as typer._click; older releases use click itself. Take the
# exception classes from wherever typer's own BadParameter lives.
_exceptions = sys.modules[typer.BadParameter.__module__]
_NO_ARGS = getattr(_exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, missing -m) as one ``error:`` line, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except _NO_ARGS as exc:
            typer.echo(exc.ctx.get_help())
            rv = 0
        except _exceptions.ClickException as exc:
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f" (see `{ctx.command_path} --help`)"
            typer.echo(f"error: {one_line(exc.format_message())}{hint}", err=True)
            rv = exc.exit_code if exc.exit_code else USER_ERROR
        except typer.Abort:
            typer.echo("aborted", err=True)
            rv = 1
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


# rich_markup_mode=None: plain click help. typer's rich help pulls in rich.markdown, pygments
# and markdown-it (~70 ms), a seventh of the 0.5 s start-up budget of `llmperf --help`.
app = typer.Typer(
    name="llmperf", cls=_OneLineErrors, no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False, rich_markup_mode=None,
    help="Analytic LLM inference performance: params, memory, KV cache, TTFT/TPOT, throughput, "
         "cost and roofline charts from hardware and model specs.")


def _register() -> None:
    from llmperf.cli import calibrate, commands, plotting, validate

    commands.register(app)
    plotting.register(app)
    calibrate.register(app)
    validate.register(app)


_register()


def main() -> None:
    """Console-script entry point (``llmperf = "llmperf.cli:main"``)."""
    app()

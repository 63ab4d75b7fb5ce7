"""Option parsing, error handling and atomic output shared by the CLI commands.

Only the standard library and typer/click are imported here; llmperf's estimators are imported
inside the functions that need them, so ``llmperf --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, NoReturn

import typer

FORMATS = ("table", "csv", "json")
USER_ERROR = 2


def one_line(message: str) -> str:
    """Collapse whitespace so an error is exactly one line."""
    return " ".join(str(message).split())


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with code 2 (a user error)."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(USER_ERROR)


def cli_errors(fn: Callable) -> Callable:
    """Turn :class:`llmperf.errors.LlmperfError` (and unwritable outputs) into exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from llmperf.errors import LlmperfError

        try:
            return fn(*args, **kwargs)
        except LlmperfError as exc:
            fail(str(exc))
        except OSError as exc:
            where = f" '{exc.filename}'" if exc.filename else ""
            fail(f"cannot write{where}: {exc.strerror or exc}")

    return wrapper


def _user_error(message: str):
    from llmperf.errors import LlmperfError

    return LlmperfError(message)


def parse_length(text: str, flag: str) -> int:
    """One token count or batch size: ``2048``, ``2k`` (2048), ``32K``, ``1M``."""
    from llmperf.units import parse_count

    try:
        return parse_count(text)
    except ValueError as exc:
        raise _user_error(f"{flag}: {exc}") from None


def parse_lengths(text: str, flag: str) -> list[int]:
    """A comma-separated list of counts: ``1,8,64`` or ``1k,8k,32k``."""
    items = [t for t in str(text).split(",") if t.strip()]
    if not items:
        raise _user_error(f"{flag} needs at least one value")
    return [parse_length(t, flag) for t in items]


def parse_optional_length(text: str | None, flag: str) -> int | None:
    return None if text is None else parse_length(text, flag)


def parse_names(text: str, flag: str) -> list[str]:
    """A comma-separated list of names (models, GPUs, dtypes); blanks are dropped."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise _user_error(f"{flag} needs at least one name")
    return items


def parse_price(value: float | None) -> float | None:
    if value is not None and value < 0:
        raise _user_error("--price must not be negative (USD per device-hour)")
    return value


def speculation(spec_tokens: str | None, draft: str | None, acceptance: float | None):
    """A :class:`llmperf.Speculation` from --spec-tokens/--draft/--acceptance (None without them)."""
    if spec_tokens is None and draft is None and acceptance is None:
        return None
    if spec_tokens is None or draft is None or acceptance is None:
        raise _user_error("speculative decoding needs --spec-tokens K, --draft MODEL|ngram and "
                          "--acceptance P together")
    from llmperf.speculative import Speculation

    return Speculation(tokens=parse_length(spec_tokens, "--spec-tokens"),
                       acceptance_rate=float(acceptance), draft=draft)


def choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    """Validate a small set of words ourselves (one-line error instead of a usage box)."""
    key = str(value).strip().lower()
    if key not in allowed:
        raise _user_error(f"{flag} must be one of {', '.join(allowed)}, got '{value}'")
    return key


def output_format(fmt: str | None, out: Path | None) -> str:
    """``--format``, defaulting to the suffix of ``--out`` (.csv, .json) and else ``table``."""
    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out is not None else ""
        return suffix if suffix in ("csv", "json") else "table"
    return choice(fmt, FORMATS, "--format")


def workload(weights: str, activations: str, kv_cache: str, tensor_parallel: int | str,
             attention: str = "flash", engine: str = "fused", pipeline_parallel: int | str = 1):
    """A validated :class:`llmperf.Workload` from the dtype/parallelism/engine options."""
    from llmperf.specs.workload import Workload

    tp = parse_length(str(tensor_parallel), "--tp")
    pp = parse_length(str(pipeline_parallel), "--pp")
    return Workload(weights=weights, activations=activations, kv_cache=kv_cache,
                    tensor_parallel=tp, pipeline_parallel=pp,
                    attention=choice(attention, ("flash", "naive"), "--attention"),
                    engine=None if engine in (None, "none") else engine)


@contextlib.contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out`` that replaces it only if the block succeeds."""
    out = Path(out)
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        raise _user_error(f"cannot write '{out}': directory '{directory}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(out: Path, text: str) -> None:
    """Write ``text`` to ``out`` atomically and say so on stderr."""
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    typer.echo(f"wrote {out}", err=True)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()

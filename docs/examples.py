"""Keep the documented CLI output true: run every ``$ llmperf ...`` example and compare.

The README and ``docs/cli.md`` show real output under each command, in fenced ``text`` blocks::

    $ llmperf estimate -m llama-3.1-8b -g h100-sxm
    <output lines, up to the next "$ " line or the end of the block>
    [exit code 2]                      <- optional: the exit code the command must return

This script runs each command as a user would (a fresh process running the ``llmperf`` entry point,
output piped, no ``COLUMNS``), in a scratch directory that links the repository's top-level entries (so
``--out grid.csv`` lands in the scratch directory and ``hardware/...`` paths resolve), and compares
stdout + stderr with the text shown, line by line with trailing spaces ignored. ``| jq .KEY`` is
emulated (the one pipe the docs use); a trailing ``# comment`` is dropped. A ``text`` block that
starts with ``>>>`` is a Python session: it is run with doctest (whitespace-normalized) in the same
scratch directory, after the commands that write the files it reads.

    python docs/examples.py            # check; prints a diff per stale example, exit 1 if any
    python docs/examples.py --update   # rewrite the shown output of the stale examples

``tests/test_docs_examples.py`` runs the check in CI, so a change to the estimator or the bundled
calibration that moves a documented number fails until the docs are regenerated with ``--update``.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "docs/cli.md")
_EXIT = re.compile(r"^\[exit code (\d+)\]$")
_JQ = re.compile(r"^(?P<cmd>.*?)\s*\|\s*jq\s+\.(?P<key>\w+)\s*$")


@dataclasses.dataclass(frozen=True)
class Example:
    """One documented command: where it is, what it runs, and what the docs say it prints.

    first_line / last_line: 0-based line numbers in ``document`` of the shown output
    (last_line exclusive; equal when the command shows no output).
    """
    document: str
    command_line: int
    command: str
    first_line: int
    last_line: int
    shown: tuple[str, ...]
    exit_code: int

    @property
    def id(self) -> str:
        return f"{self.document}:{self.command_line + 1}"


def _text_blocks(lines: list[str]):
    """(start, end) 0-based line ranges of the bodies of ```text fenced blocks."""
    start = None
    for number, line in enumerate(lines):
        if start is None and line.strip() == "```text":
            start = number + 1
        elif start is not None and line.strip() == "```":
            yield start, number
            start = None


def examples(document: str) -> list[Example]:
    """Every ``$ llmperf`` command of ``document`` (a path relative to the repository root)."""
    lines = (ROOT / document).read_text().splitlines()
    found = []
    for start, end in _text_blocks(lines):
        commands = [n for n in range(start, end) if lines[n].startswith("$ ")]
        for index, number in enumerate(commands):
            if not lines[number].startswith("$ llmperf"):
                continue
            stop = commands[index + 1] if index + 1 < len(commands) else end
            shown = lines[number + 1:stop]
            exit_code = 0
            if shown and _EXIT.match(shown[-1].strip()):
                exit_code = int(_EXIT.match(shown[-1].strip()).group(1))
                shown = shown[:-1]
            found.append(Example(document, number, lines[number][2:], number + 1,
                                 number + 1 + len(shown), tuple(shown), exit_code))
    return found


@dataclasses.dataclass(frozen=True)
class Session:
    """A ``>>>`` Python session shown in a ``text`` block (checked with doctest).

    setup: the ``$ llmperf ... --out FILE`` examples above it in the same document, whose files
    the session may read.
    """
    document: str
    first_line: int
    text: str
    setup: tuple[Example, ...]

    @property
    def id(self) -> str:
        return f"{self.document}:{self.first_line + 1}"


def sessions(document: str) -> list[Session]:
    """Every ``>>>`` session of ``document``."""
    lines = (ROOT / document).read_text().splitlines()
    commands = examples(document)
    found = []
    for start, end in _text_blocks(lines):
        if lines[start].startswith(">>> "):
            setup = tuple(c for c in commands if c.command_line < start and " --out " in c.command)
            found.append(Session(document, start, "\n".join(lines[start:end]) + "\n", setup))
    return found


def run_session(session: Session, scratch: Path) -> str:
    """Doctest the session in ``scratch`` (whitespace-normalized); '' if it passes, else the report."""
    import contextlib
    import doctest
    import io

    parser = doctest.DocTestParser()
    test = parser.get_doctest(session.text, {}, session.id, session.document, session.first_line)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    here = Path.cwd()
    try:
        os.chdir(scratch)
        with contextlib.redirect_stdout(io.StringIO()):
            runner.run(test, out=report.write)
    finally:
        os.chdir(here)
    return report.getvalue() if runner.failures else ""


def all_examples() -> list[Example]:
    return [example for document in DOCUMENTS for example in examples(document)]


def link_repository(scratch: Path) -> Path:
    """Fill the empty directory ``scratch`` with a link to every top-level entry of the repository."""
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (scratch / entry.name).symlink_to(entry)
    return scratch


def run(example: Example, scratch: Path) -> tuple[list[str], int]:
    """Run the example's command in ``scratch`` (see :func:`link_repository`); returns (output
    lines, exit code)."""
    command = example.command.split(" #", 1)[0].strip()
    jq = _JQ.match(command)
    if jq:
        command = jq.group("cmd")
    argv = shlex.split(command)
    assert argv[0] == "llmperf", command
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    launcher = "import sys; sys.argv[0] = 'llmperf'; from llmperf.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", launcher, *argv[1:]], cwd=scratch, env=env,
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    if jq and done.returncode == 0:
        value = json.loads(done.stdout)[jq.group("key")]
        output = json.dumps(value) + "\n"
    return output.splitlines(), done.returncode


def _normal(lines) -> list[str]:
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def difference(example: Example, output: list[str], exit_code: int) -> str:
    """Empty when the shown output and exit code match the run; else a readable diff."""
    shown, got = _normal(example.shown), _normal(output)
    problems = []
    if exit_code != example.exit_code:
        problems.append(f"exit code {exit_code}, the docs say {example.exit_code}")
    if shown != got:
        problems.extend(difflib.unified_diff(shown, got, "shown in the docs", "output now",
                                             lineterm="", n=1))
    if not problems:
        return ""
    return f"{example.id}: $ {example.command}\n" + "\n".join(problems)


def update(stale: list[tuple[Example, list[str], int]]) -> None:
    """Rewrite the shown output of each stale example in place (bottom-up per document)."""
    by_document: dict[str, list] = {}
    for example, output, exit_code in stale:
        by_document.setdefault(example.document, []).append((example, output, exit_code))
    for document, items in by_document.items():
        path = ROOT / document
        lines = path.read_text().splitlines()
        for example, output, exit_code in sorted(items, key=lambda item: -item[0].first_line):
            new = _normal(output)
            if exit_code:
                new.append(f"[exit code {exit_code}]")
            end = example.last_line + (1 if example.exit_code else 0)
            lines[example.first_line:end] = new
        path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite stale outputs in place")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llmperf-docs-") as directory:
        return _check(link_repository(Path(directory)), args.update)


def _check(scratch: Path, write: bool) -> int:
    stale = []
    for example in all_examples():
        output, exit_code = run(example, scratch)
        diff = difference(example, output, exit_code)
        print(f"{'STALE' if diff else 'ok   '} {example.id}  $ {example.command[:90]}")
        if diff:
            print(diff)
            stale.append((example, output, exit_code))
    failed_sessions = 0
    for document in DOCUMENTS:
        for session in sessions(document):
            report = run_session(session, scratch)
            print(f"{'FAIL ' if report else 'ok   '} {session.id}  >>> session (fix by hand)")
            if report:
                print(report)
                failed_sessions += 1
    if stale and write:
        update(stale)
        print(f"updated {len(stale)} example(s)")
        stale = []
    return 1 if stale or failed_sessions else 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's tour, run as a new user would: a fresh shell without the venv on its PATH,
``. .venv/bin/activate``, then the commands of the tour's code blocks, and a closed stdout
pipe.

The fast test runs every reading command as written and the one planning command they
read from on a 5 mm grid; the planning commands themselves (the demo, TG-119, ...) run in
the ``slow`` test, since the dose-influence matrices of five cases take minutes on a cold
cache and 2 cores.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ACTIVATE = ROOT / ".venv" / "bin" / "activate"
RTPLAN = ROOT / ".venv" / "bin" / "rtplan"

pytestmark = pytest.mark.skipif(
    not ACTIVATE.is_file() or not RTPLAN.is_file(),
    reason="the tour needs the repository's .venv (make test creates it)",
)


def tour_commands() -> list[str]:
    """The shell commands of the README's "A short tour" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    commands = []
    for lang, block in re.findall(r"```(\w*)\n(.*?)```", section, re.S):
        for raw in block.splitlines():
            line = raw.strip()
            if lang == "text":  # a transcript: commands are the "$ " lines
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _shorten(command: str, fast: bool = False) -> str:
    """``rtplan plan`` with one iteration (none if ``fast``, on a 5 mm grid) and no report
    (``rtplan report`` builds one later)."""
    args = shlex.split(command)
    if args[:2] != ["rtplan", "plan"]:
        return command
    if "--max-iterations" in args:
        i = args.index("--max-iterations")
        del args[i : i + 2]
    extra = ["--max-iterations", "0", "--spacing-mm", "5"] if fast else ["--max-iterations", "1"]
    return shlex.join([*args, *extra, "--no-report"])


#: Tour commands that end with another code than 0, and what they must say.
EXPECTED = {
    # the tour's hn3 session finished; resume says so instead of running it again
    "rtplan resume runs/hn3/journal.jsonl": (2, "nothing to resume"),
}
#: The command of the tour that makes the session the later commands read.
MAKES_HN3 = "--out runs/hn3"


def _plans(command: str) -> bool:
    """Whether a tour command plans a case (seconds to minutes on a cold cache)."""
    return command.startswith(("rtplan plan", "rtplan demo", "rtplan replay"))


def fresh_env(tmp_path: Path, tg119: bool = False) -> dict[str, str]:
    """A login-like environment: no venv on PATH, its own home, cache and secret (and, with
    ``tg119``, the TG-119 file the test process resolved: fetched at most once)."""
    from mock_tps.tg119_fetch import resolve_tg119_path

    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "COLUMNS": "80",
        "RTPLAN_CACHE_DIR": str(tmp_path / "cache"),
        "RTPLAN_OFFLINE": "1",
    }
    if tg119:
        env["RTPLAN_TG119"] = str(resolve_tg119_path())
    if "RTPLAN_SECRET_FILE" in os.environ:
        env["RTPLAN_SECRET_FILE"] = os.environ["RTPLAN_SECRET_FILE"]
    return env


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = f". {shlex.quote(str(ACTIVATE))} && {command}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,  # --approve: end of input is the clinician's stop
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_fresh_shell_has_no_rtplan_until_activated(tmp_path: Path) -> None:
    env = fresh_env(tmp_path)
    bare = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", "command -v rtplan"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bare.returncode != 0  # what the README now explains
    assert ". .venv/bin/activate" in tour_commands()


def _tour(tmp_path: Path, tg119: bool = False) -> tuple[list[str], Path, dict[str, str]]:
    commands = [c for c in tour_commands() if c != ". .venv/bin/activate"]
    assert commands[0] == "rtplan demo" and len(commands) >= 10
    assert sum(MAKES_HN3 in c for c in commands) == 1
    work = tmp_path / "work"
    work.mkdir()
    site = resources.files("site_templates").joinpath("liver.yaml").read_text()
    (work / "my_site.yaml").write_text(site)  # the user's own template
    return commands, work, fresh_env(tmp_path, tg119=tg119)


def _check(command: str, done: subprocess.CompletedProcess[str]) -> None:
    code, says = EXPECTED.get(command, (0, ""))
    shown = f"$ {command}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == code, shown
    assert says in done.stdout + done.stderr, shown
    assert "Traceback" not in done.stderr, shown


def test_the_readme_tour_from_a_fresh_shell(tmp_path: Path) -> None:
    """Every tour command that reads or prints runs as written; the one that makes the
    session they read runs on a 5 mm grid without iterations; the other planning commands
    are found and parse (``--help``; they run in the slow test below)."""
    commands, work, env = _tour(tmp_path)
    for command in commands:
        if MAKES_HN3 in command:
            run = _shorten(command, fast=True)
        elif _plans(command) and not command.startswith("rtplan replay"):
            run = f"{shlex.join(shlex.split(command)[:2])} --help"
        else:
            run = command
        _check(command, _run(run, work, env))
    assert (work / "runs" / "hn3" / "report" / "report.html").is_file()


@pytest.mark.slow
def test_the_whole_readme_tour_from_a_fresh_shell(tmp_path: Path) -> None:
    """Every command of the tour as written (one iteration per ``rtplan plan``), the demo
    and TG-119 included: 1-3 minutes on a cold cache, hence ``slow``."""
    commands, work, env = _tour(tmp_path, tg119=True)
    for command in commands:
        _check(command, _run(_shorten(command), work, env))
    assert (work / "runs" / "hn3" / "report" / "report.html").is_file()
    assert list((work / "rtplan-sessions").glob("demo-*/report/report.html"))


def _closed_pipe_run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before rtplan writes (like `| head -1` done)
    try:
        return subprocess.run(
            [str(RTPLAN), *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=fresh_env(tmp_path) | {"PATH": os.path.dirname(sys.executable)},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["templates", "list"], ["templates", "list", "--json"]])
def test_a_closed_stdout_pipe_exits_0_quietly(args: list[str], tmp_path: Path) -> None:
    done = _closed_pipe_run(args, tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr

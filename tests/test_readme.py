"""The README's guide cannot rot: its shell blocks run, in order, against a real server.

The teacher guide, the student guide, the after-class steps and the operations run for
real in a scratch folder (the `harness serve` line is started in the background on a free
port, and $TOKEN is the first team's token from the imported roster). Every other
`harness ...` line of the README (baselines, labs: slow at full size and tested at tiny
sizes in their own modules) must name a real command with real options.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest

from harness.cli import main
from harness.demo import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
RUN_SECTIONS = ("Teacher guide", "Student guide", "After the class: close, reveal, grade",
                "Operations")


def sections() -> dict[str, str]:
    parts = re.split(r"(?m)^## ", README)
    return {p.split("\n", 1)[0].strip(): p for p in parts[1:]}


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def harness_lines(block: str) -> list[str]:
    """The `harness ...` commands of a block (comments dropped, heredoc bodies skipped)."""
    out, in_heredoc = [], None
    for line in block.replace("\\\n", " ").splitlines():     # join continued lines
        if in_heredoc:
            if line.strip() == in_heredoc:
                in_heredoc = None
            continue
        m = re.search(r"<<'?(\w+)'?", line)
        if m:
            in_heredoc = m.group(1)
        line = line.split("  #", 1)[0].strip()
        if line.startswith("harness "):
            out.append(line)
    return out


def test_every_readme_command_parses():
    """Every `harness ...` line names a real command and real options."""
    lines = [line for block in sh_blocks(README) for line in harness_lines(block)]
    assert len(lines) > 30
    for line in lines:
        args = shlex.split(line.replace('"$TOKEN"', "TOKEN").replace('"$ID"', "1")
                           .replace('"$TEACHER_TOKEN"', "TOKEN"))[1:]
        cmd, path = main, ["harness"]
        while isinstance(cmd, click.Group) and args and args[0] in cmd.commands:
            path.append(args[0])
            cmd = cmd.commands[args.pop(0)]
        assert not isinstance(cmd, click.Group), f"{line!r}: no such command"
        try:
            cmd.make_context(" ".join(path), list(args))
        except click.BadParameter as exc:
            # files the guide creates on the way (a backup, a roster) need not exist here
            if "does not exist" not in str(exc):
                pytest.fail(f"README line {line!r} does not parse: {exc}")
        except click.UsageError as exc:
            pytest.fail(f"README line {line!r} does not parse: {exc}")


def test_the_guide_runs_end_to_end(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HARNESS_") or k == "HARNESS_TEST_POSTGRES_URL"}
    env.update(PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
               HOME=str(tmp_path / "user"), HARNESS_CONFIG=str(tmp_path / "user/cred.json"))
    found = sections()
    server = None

    def run(block: str, title: str) -> str:
        nonlocal server
        # the teacher's laptop reaches the server machine at SERVER
        script = block.replace("8000", str(port)).replace("http://SERVER:", "http://127.0.0.1:")
        serve = re.search(r"(?m)^harness serve .*$", script)
        if serve:
            script = script.replace(serve.group(0), "")
            server = subprocess.Popen(shlex.split(serve.group(0)), cwd=tmp_path, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"README block in {title!r} failed:\n{script}\n{r.stdout}\n{r.stderr}"
        if serve:
            _wait_for(f"http://127.0.0.1:{port}/", server)
        return r.stdout

    try:
        outputs = {}
        for title in RUN_SECTIONS:
            assert title in found, f"README lost its section {title!r}"
            if title == "Student guide":
                with open(tmp_path / "roster-tokens.csv") as f:
                    env["TOKEN"] = next(csv.DictReader(f))["token"]
            outputs[title] = ""
            for block in sh_blocks(found[title]):
                outputs[title] += run(block, title)
                made = re.search(r"teacher token #\d+ .*\n(\S+)\n", outputs[title])
                if made:                # `harness teacher token` printed it: the laptop's
                    env["TEACHER_TOKEN"] = made.group(1)
        assert "validation accuracy" in outputs["Student guide"]
        assert "Owls" in outputs["Student guide"]                  # the board shows the team
        grades = (tmp_path / "grades.csv").read_text()
        assert "Owls" in grades and "Rockets" in grades
        assert (tmp_path / "class-restored/competitions/digits/manifest.json").is_file()
        assert "reveal" in outputs["After the class: close, reveal, grade"]
        # the laptop's commands went over HTTP, as the teacher token
        assert "fay@example.edu" in outputs["Teacher guide"]
        from harness.service import Harness

        teacher = Harness(tmp_path / "class")
        acted = {a["detail"]: a["actor"] for a in teacher.audit_log()}
        teacher.close_connections()
        assert acted["fay@example.edu -> Latecomers"] == "teacher token #1 (laptop)"
        lms = (tmp_path / "lms.csv").read_text().splitlines()
        assert lms[0].startswith("member,section,team") and len(lms) == 1 + 5
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def _wait_for(url: str, proc, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"`harness serve` from the README exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"`harness serve` from the README did not answer at {url}")

"""The README is the user's manual: its tables must say what the code does."""

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from spamops.cli import commands
from spamops.config import defaults_markdown
from spamops.errors import ExitCode
from spamops_dev.ports import free_port
from spamops_dev.processes import http_ok, spawn, wait_ready

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_settings_table_is_generated_from_the_config_models():
    table = README.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == defaults_markdown(), "regenerate with: spamops config defaults --markdown"


def test_every_exit_code_is_documented():
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", README, flags=re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}


def _section(title: str, text: str = README) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def command_table(text: str = README) -> dict[str, str]:
    """The README's command table: {"models list": its whole row}, parsed from the `spamops ...` cells."""
    rows = {}
    for line in _section("Command line", text).splitlines():
        cell = re.match(r"^\| `spamops ([a-z][a-z -]*?)(?: [\[A-Z].*?)?` \|", line)
        if cell:
            assert cell.group(1) not in rows, f"{cell.group(1)} has two rows"
            rows[cell.group(1)] = line
    return rows


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {
        s
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._VersionAction)
        for s in a.option_strings
        if s.startswith("--") or len(s) == 2
    }


def test_the_command_table_lists_exactly_the_parsers_commands():
    assert set(command_table()) == {name for name, _ in commands()}


def test_every_flag_is_documented_in_its_row_or_as_a_shared_flag():
    """A flag of one command is in that command's row; a flag several commands share is named in
    the prose under the table (`Every command takes ...`)."""
    rows, leaves = command_table(), dict(commands())
    uses: dict[str, int] = {}
    for parser in leaves.values():
        for flag in _flags(parser):
            uses[flag] = uses.get(flag, 0) + 1
    prose = _section("Command line").split("\n### ", 1)[0]
    prose = "\n".join(line for line in prose.splitlines() if not line.startswith("|"))
    for name, parser in leaves.items():
        for flag in _flags(parser):
            where = prose if uses[flag] > 1 else rows[name]
            assert re.search(rf"[`\[ ]{re.escape(flag)}(?![\w-])", where), f"spamops {name} {flag} is not documented"
    assert re.search(r"`-o json`", prose) and re.search(r"`-o wide`", prose)


def test_the_command_table_parser_catches_a_missing_row():
    assert "rollback" in command_table()
    assert "rollback" not in command_table(README.replace("| `spamops rollback` |", "| rollback |"))


def _predict_example() -> tuple[list[str], list[dict]]:
    serving = _section("Serving with KServe")
    (curl,) = [line for line in serving.splitlines() if line.startswith("curl") and ":predict" in line]
    request = json.loads(shlex.split(curl)[shlex.split(curl).index("-d") + 1])
    answer = json.loads(serving.split("```json\n", 1)[1].split("```", 1)[0])
    return request["instances"], answer["predictions"]


SERVE_PORT = "localhost:8080"  # the README's address; the test serves on a free port instead


def _shell_lines(title: str) -> list[str]:
    """The command lines of a section's first shell block, in order."""
    block = _section(title).split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _serving_walkthrough() -> list[str]:
    """What a new user runs: the Quick start's demo (not its whole test suite), then the serving section."""
    (demo,) = [line for line in _shell_lines("Quick start") if line.startswith("make demo")]
    return [demo, *_shell_lines("Serving with KServe")]


def _run_line(line: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """One line in bash, as a user types it; the environment it leaves (an ``export``) carries on."""
    env_file = cwd / ".walkthrough-env"
    script = f"{line}\n__rc=$?; env -0 > {shlex.quote(str(env_file))}; exit $__rc"
    done = subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if env_file.exists():
        env.clear()
        env.update(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
    return done


@pytest.fixture(scope="module")
def walkthrough(real_data, tmp_path_factory) -> Iterator[dict]:
    """The README's serving walkthrough, run line by line as written after the Quick start's
    ``make demo``, in a fresh directory that has the checkout's make targets, test support and virtualenv (so the
    stores it names start empty, as on a fresh clone). Substituted: the
    real data's path (``SPAMOPS_REAL_DATA``) and the port (a free one: tests never use fixed ports).

    Yields ``{"home": Path, "outputs": {line: CompletedProcess}, "server_log": Path}``.
    """
    if subprocess.run(["make", "-q", ".venv/.installed"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.fail("the virtualenv is older than pyproject.toml or requirements.lock: run 'make install' first")
    home = tmp_path_factory.mktemp("readme-walkthrough")
    for name in ("Makefile", "mk", "pyproject.toml", "dev", "requirements.lock", ".venv"):
        (home / name).symlink_to(ROOT / name)
    port = free_port()
    env = {**os.environ, "SERVE_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    outputs, server, log = {}, None, home / "serve.log"
    try:
        for written in _serving_walkthrough():
            line = written.replace("../shared/data", shlex.quote(str(real_data))).replace(
                SERVE_PORT, f"localhost:{port}"
            )
            if line.startswith("make serve"):  # the README runs it in its own terminal: here, in the background
                server = spawn(["bash", "-c", line], log, env=env, cwd=home, detached=True)
                wait_ready("make serve", server, lambda: http_ok(f"http://127.0.0.1:{port}/v1/models/spam"), 120, log)
                continue
            done = _run_line(line, env, home)
            assert done.returncode == 0, (
                f"README line failed ({done.returncode}): {written}\n{done.stdout}{done.stderr}"
            )
            outputs[written] = done
        yield {"home": home, "outputs": outputs, "server_log": log}
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the group started here: make, its shell, the predictor
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


def test_the_serving_walkthrough_runs_as_written_and_answers_what_it_shows(walkthrough):
    lines = _serving_walkthrough()
    (train,) = [line for line in lines if line.startswith("make train")]
    assert "promoted: production is now" in walkthrough["outputs"][train].stdout, "the gate refused the model"
    assert "gate: PASSED" in walkthrough["outputs"][train].stdout
    assert "serving " in walkthrough["server_log"].read_text()

    (predict,) = [line for line in lines if line.startswith("curl") and ":predict" in line]
    answered = json.loads(walkthrough["outputs"][predict].stdout)["predictions"]
    _, documented = _predict_example()
    assert [a["label"] for a in answered] == [d["label"] for d in documented]
    for a, d in zip(answered, documented, strict=True):
        assert abs(a["spam_probability"] - d["spam_probability"]) <= 0.01, (a, d)
        assert a["model_version"].startswith(d["model_version"].removesuffix("…"))

    (explain,) = [line for line in lines if line.startswith("curl") and ":explain" in line]
    explained = json.loads(walkthrough["outputs"][explain].stdout)
    assert len(explained["explanations"]) == 1, explained


@pytest.fixture(scope="module")
def real_model(walkthrough, tmp_path_factory):
    """The documented model: the one the walkthrough trained, pulled like KServe does, loaded by our predictor."""
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry
    from spamops.serving.model import SpamModel

    store = walkthrough["home"] / ".spamops" / "real"
    registry = Registry(open_store(str(store)), "spam")
    model_dir = tmp_path_factory.mktemp("readme-model") / "model"
    registry.pull(registry.production().version, model_dir)
    model = SpamModel("spam", model_dir)
    assert model.load(), model.load_error
    return model


def test_readme_predictions_are_what_the_real_data_model_answers(real_model):
    instances, documented = _predict_example()
    answered = real_model.predict({"instances": instances})["predictions"]
    assert [a["label"] for a in answered] == [d["label"] for d in documented]
    for a, d in zip(answered, documented, strict=True):
        assert abs(a["spam_probability"] - d["spam_probability"]) <= 0.01, (a, d)


def test_readme_short_spam_caveat_is_true(real_model):
    caveat = re.search(r'weak on short\s+spam: `"([^"]+)"` \((\d+) characters\) comes back\s+`(\w+)`', README)
    assert caveat, "the README's short-spam caveat moved; update this test"
    message, length, label = caveat.groups()
    assert len(message) == int(length)
    assert real_model.predict({"instances": [message]})["predictions"][0]["label"] == label == "ham"


def test_no_run_of_twelve_words_is_said_twice():
    """The manual says each thing once (the command-line section repeated two sentences)."""
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    words = " ".join(line for line in prose.splitlines() if not line.startswith("|")).split()
    runs = Counter(" ".join(words[i : i + 12]) for i in range(len(words) - 11))
    repeated = sorted(run for run, seen in runs.items() if seen > 1)
    assert not repeated, repeated[:3]

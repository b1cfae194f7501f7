"""The commands of README.md and docs/*.md run as written, from a `make demo` output onward.

Every bash or Python block in the docs carries a marker on the line before it:

- ``<!-- docs-test: run NAME -->``: a test below runs it (against a stand-in of the demo output,
  ``runs/demo/humanlm/model`` with its mode file, and scripted servers on 127.0.0.1); only ports,
  and an assistant that would need a key, are substituted;
- ``<!-- docs-test: needs-gpu -->``, ``needs-key``, ``needs-network``: it cannot run here, and the
  block or the text just above it says so where a reader sees it;
- ``<!-- docs-test: elsewhere tests/PATH.py -->``: that test file runs it.

So a wrong path or a renamed flag in a doc fails a test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from markdown_it import MarkdownIt

from humanlm.states.mode_file import write_mode_file
from humanlm.testing import ScriptedServer

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_LANGUAGES = {"bash", "sh", "shell", "console", "python"}
MARKER = re.compile(r"<!-- docs-test: (?P<kind>[\w-]+)(?: (?P<arg>\S+))? -->")
# The words a reader must see in the block or just above it, per reason it is not run.
NEEDS = {"needs-gpu": r"GPU", "needs-key": r"key|KEY", "needs-network": r"network|PyPI|hub"}
# Every block the tests below run; the docs' `run` markers must name exactly these.
RUN = {
    "api",
    "readme-eval",
    "readme-serve",
    "readme-client",
    "readme-simulator",
    "readme-simulate",
    "readme-dry-run",
    "readme-plans",
    "serve-md-serve",
    "serve-md-simulator",
    "serve-md-litellm",
    "verl-dry-run",
}
DEMO_MODEL = Path("runs/demo/humanlm/model")  # where `make demo` puts the HumanLM model


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    kind: str | None  # the marker's kind, None without a marker
    arg: str | None
    above: str  # the text a reader sees just above the block

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, with the marker and the text above each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for token in MarkdownIt().parse("\n".join(lines)):
        if token.type != "fence" or token.map is None:
            continue
        start = token.map[0]
        marker = MARKER.fullmatch(lines[start - 1].strip()) if start else None
        top = start - 1 if marker else start
        above = []  # up to 8 lines, back to the previous block, the section heading included
        for line in reversed(lines[max(0, top - 8) : top]):
            if line.startswith("```"):
                break
            above.append(line)
            if line.startswith("#"):
                break
        found.append(
            Block(
                path=path,
                line=start + 1,
                language=token.info.split(" ")[0],
                text=token.content,
                kind=marker["kind"] if marker else None,
                arg=marker["arg"] if marker else None,
                above="\n".join(reversed(above)),
            )
        )
    return found


def all_blocks() -> list[Block]:
    return [b for path in DOCS for b in doc_blocks(path) if b.language in COMMAND_LANGUAGES]


def run_blocks(name: str) -> list[Block]:
    found = [b for b in all_blocks() if b.kind == "run" and b.arg == name]
    assert found, f"no docs block is marked 'docs-test: run {name}'"
    return found


def one_block(name: str) -> Block:
    [block] = run_blocks(name)
    return block


def test_every_command_block_is_run_or_says_why_not():
    problems = []
    for block in all_blocks():
        if block.kind == "run":
            if block.arg not in RUN:
                problems.append(f"{block.where}: no test runs the block named {block.arg!r}")
        elif block.kind in NEEDS:
            if not re.search(NEEDS[block.kind], block.text + block.above):
                problems.append(f"{block.where}: {block.kind}, but neither the block nor the text "
                                "above it says so")  # fmt: skip
        elif block.kind == "elsewhere":
            test_file = ROOT / (block.arg or "")
            if not test_file.is_file() or block.path.name not in test_file.read_text("utf-8"):
                problems.append(f"{block.where}: {block.arg} does not read {block.path.name}")
        else:
            problems.append(f"{block.where}: no '<!-- docs-test: ... -->' marker above the block")
    assert not problems, "\n".join(problems)
    assert {b.arg for b in all_blocks() if b.kind == "run"} == RUN


def test_no_doc_or_help_names_a_model_folder_the_demo_does_not_write():
    # humanlm issue 25: docs and --help said hf:runs/demo/model; the demo writes
    # runs/demo/<method>/model.
    methods = "base|sft|grpo|humanlm|<method>"
    pattern = re.compile(rf"runs/demo/(?:model\b|(?!(?:{methods})/)[^/\s`]+/model\b)")
    files = [*DOCS, *sorted((ROOT / "src" / "humanlm").rglob("*.py"))]
    wrong = [
        f"{f.relative_to(ROOT)}: {m}" for f in files for m in pattern.findall(f.read_text("utf-8"))
    ]
    assert not wrong, "\n".join(wrong)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    """The environment a newcomer's shell has after `make demo`: the venv's `humanlm` first."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}


def run_bash(text: str, cwd: Path, *, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a block as a bash script that stops at the first failing command."""
    return subprocess.run(
        ["bash", "-e", "-c", text],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_refuses_a_missing_model_folder_before_it_announces_itself(tmp_path):
    # humanlm issue 25: serve printed "serving http://..." and failed 21 s later with a hub error.
    done = run_bash("humanlm serve --model hf:runs/demo/model --port 8000", tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing announced
    assert done.stderr.strip().splitlines() == [
        "error: model folder runs/demo/model does not exist (and is not a hub id)"
    ]


@pytest.fixture(scope="module")
def demo_out(warmed_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the one `make demo` ran in: ``runs/demo/humanlm/model`` holds a
    format-trained tiny model and its training mode, as the demo's HumanLM model does."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(warmed_model_dir, root / DEMO_MODEL)
    write_mode_file(root / DEMO_MODEL, "humanlm")
    return root


@pytest.mark.slow
def test_api_page_runs_top_to_bottom_as_one_script(tmp_path, monkeypatch, capsys):
    blocks = run_blocks("api")
    assert [b.text for b in blocks] == [
        b.text for b in doc_blocks(ROOT / "docs" / "api.md") if b.language == "python"
    ]  # every Python block of the page, in order
    script = "\n".join(b.text for b in blocks)
    monkeypatch.chdir(tmp_path)
    with ScriptedServer(["hi"]) as server:
        script = script.replace("http://127.0.0.1:8000/v1", server.base_url)  # the port only
        namespace: dict = {}
        exec(compile(script, "docs/api.md", "exec"), namespace)
        assert len(server.chat_requests) == 1
    printed = capsys.readouterr().out
    assert "response_alignment" in printed  # the evaluation summary was printed
    assert printed.rstrip().endswith("True hi 1")  # the last block's answer
    assert (namespace["WORK"] / "eval" / "results.json").is_file()
    assert namespace["verdict"].verdicts[0].score > namespace["verdict"].verdicts[1].score
    shutil.rmtree(namespace["WORK"])


@pytest.mark.slow
def test_readme_evaluates_and_reports_the_demo_model(demo_out):
    done = run_bash(one_block("readme-eval").text, demo_out)
    assert done.returncode == 0, done.stderr[-3000:]
    samples = (demo_out / "runs/demo-eval/humanlm/samples.jsonl").read_text().splitlines()
    assert len(samples) == 32  # the demo's whole test split
    assert (demo_out / "runs/demo-eval/humanlm/results.json").is_file()
    assert (demo_out / "runs/demo-eval/report.html").is_file()
    assert (demo_out / "runs/demo-eval/report.md").is_file()


@pytest.mark.slow
def test_readme_and_serve_md_python_simulators_run(demo_out, monkeypatch, capsys):
    monkeypatch.chdir(demo_out)
    for name in ("readme-simulator", "serve-md-simulator"):
        block = one_block(name)
        exec(compile(block.text, block.where, "exec"), {})
    assert capsys.readouterr().out.strip()


class Served:
    """A docs block that starts `humanlm serve`, run in the background on a free port."""

    def __init__(self, block: Block, cwd: Path):
        self.port = _free_port()
        command = block.text.strip().replace("--port 8000", f"--port {self.port}")
        assert f"--port {self.port}" in command
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 300  # imports and model loading on a busy machine
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[1][-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise AssertionError(f"{block.where}: the server did not answer /health")

    def client_code(self, block: Block) -> str:
        return block.text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.mark.slow
def test_readme_serves_the_demo_model_and_the_openai_sdk_talks_to_it(demo_out, capsys):
    served = Served(one_block("readme-serve"), demo_out)
    try:
        client = one_block("readme-client")
        exec(compile(served.client_code(client), client.where, "exec"), {})
    finally:
        served.stop()
    extension = capsys.readouterr().out.strip().splitlines()[-1]
    assert "'ended'" in extension and "'raw'" in extension


@pytest.mark.slow
def test_serve_md_serves_the_demo_model_for_a_litellm_harness(demo_out):
    served = Served(one_block("serve-md-serve"), demo_out)
    try:
        models = httpx.get(f"http://127.0.0.1:{served.port}/v1/models", timeout=30).json()
        assert models["data"][0]["owned_by"] == "humanlm"
        pytest.importorskip("litellm")  # the harness block needs humanlm[litellm]
        harness = one_block("serve-md-litellm")
        namespace: dict = {}
        exec(compile(served.client_code(harness), harness.where, "exec"), namespace)
        assert isinstance(namespace["text"], str)
    finally:
        served.stop()


@pytest.mark.slow
def test_readme_simulates_conversations_with_the_demo_model(demo_out):
    block = one_block("readme-simulate")
    with ScriptedServer(reply_fn=lambda request: "Cats sleep a lot; that is normal.") as server:
        # The assistant is gpt-4o-mini on OpenAI's API in the docs (a key); here the scripted one.
        script = block.text.replace("openai:gpt-4o-mini", f"openai:gpt-4o-mini@{server.base_url}")
        done = run_bash(script, demo_out)
    assert done.returncode == 0, done.stderr[-3000:]
    [conversation] = [
        json.loads(line)
        for line in (demo_out / "runs/sim/conversations.jsonl").read_text().splitlines()
    ]
    assert conversation["id"] == "cats" and conversation["error"] is None
    assert (demo_out / "runs/sim/report.md").is_file()


@pytest.mark.slow
def test_readme_dry_runs_print_the_plans(tmp_path):
    refused = run_bash(one_block("readme-dry-run").text, tmp_path, timeout=300)
    assert refused.returncode == 2 and "# refused" in refused.stdout  # as the comment says
    # Every preset's plan takes 30 launches; two of them show the loop works as written.
    loop = one_block("readme-plans").text
    assert "| cut -d' ' -f1)" in loop
    done = run_bash(loop.replace("| cut -d' ' -f1)", "| cut -d' ' -f1 | head -2)"), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("# plan fits") == 2


@pytest.mark.slow
def test_verl_md_dry_run_needs_no_gpu(tmp_path):
    pytest.importorskip("verl")
    done = run_bash(one_block("verl-dry-run").text, tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "verl.trainer.main_ppo" in done.stdout

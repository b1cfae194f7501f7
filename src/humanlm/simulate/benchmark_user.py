"""A humanlm simulator as the user of an agent benchmark (tau2-bench and other harnesses).

Harnesses that let an LLM play the user (tau2-bench's ``UserSimulator``, tau-bench's user env)
send the user model its own view of the conversation, through litellm: a system message with
role-play guidelines and the task's user scenario, the user's own earlier turns as
``assistant`` and the agent's turns as ``user``. A reply that contains a stop token
(``###STOP###``) ends the task. ``BenchmarkUser.respond(messages)`` takes that list as it is and
returns the user's next message and a stop flag:

- the scenario becomes persona + goal (``read_user_instructions``): tau2's ``<scenario>`` block
  (``Persona:`` -> persona, ``Instructions:`` -> goal), tau-bench's ``Instruction:`` paragraph
  (-> goal); the guidelines around it, written to make a general chat model act as a user, are
  left out; a system message in neither form is the persona;
- the roles are swapped back (``user`` = the simulated user, as everywhere in humanlm);
- every turn passes the fidelity check of ``humanlm simulate`` or is drawn again;
- the humanlm end signal, or a turn that stays empty, becomes the harness's stop token.

``tau2_scenarios`` turns tau2 task files into scenarios for ``humanlm simulate --scenarios``.
Over HTTP, ``humanlm serve --end-text '###STOP###'`` with the ``/flipped/v1`` base URL takes the
harness's messages the same way (docs/benchmark_user.md).

Example:
    >>> user = BenchmarkUser(UserSimulator.from_spec("hf:runs/demo/humanlm/model"))  # doctest: +SKIP
    >>> turn = user.respond([{"role": "system", "content": "<scenario>...</scenario>"},
    ...                      {"role": "user", "content": "Hi! How can I help you today?"}])  # doctest: +SKIP
    >>> turn.content, turn.stop  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from humanlm.errors import DataError, HumanlmError
from humanlm.files import write_jsonl
from humanlm.simulate.fidelity import check_user_turn
from humanlm.simulate.messages import ConversationError
from humanlm.simulate.reply import Reply
from humanlm.simulate.scenarios import Scenario

__all__ = [
    "DEFAULT_PERSONA",
    "STOP",
    "BenchmarkTurn",
    "BenchmarkUser",
    "UserInstructions",
    "from_harness_messages",
    "read_user_instructions",
    "tau2_scenarios",
    "write_scenarios",
]

# tau2-bench's and tau-bench's stop token (tau2 also ends on ###TRANSFER###, ###OUT-OF-SCOPE###).
STOP = "###STOP###"
# Who the user is when the scenario names no persona: tau2's guidelines say as much.
DEFAULT_PERSONA = "A customer contacting a company's customer service."

_SCENARIO = re.compile(r"<scenario>\s*(.*?)\s*</scenario>", re.DOTALL)
_TAU_INSTRUCTION = re.compile(r"(?:^|\n)Instruction: (.*?)\n\s*Rules:\n", re.DOTALL)
_SECTION = re.compile(r"^(Persona|Instructions):[ \t]*\n", re.MULTILINE)


class User(Protocol):
    """What the adapter needs of a simulator (``UserSimulator`` and ``ServedUserSimulator``)."""

    spec: str

    async def areply(self, persona: Any, messages: Sequence[Any]) -> Reply: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class UserInstructions:
    """Who the user is and what they want, as a harness's system message gives them."""

    persona: str
    goal: str = ""

    def persona_for_user(self) -> str:
        """The persona the simulator gets (the goal added, as ``Scenario`` does)."""
        return str(Scenario("-", self.persona, self.goal).persona_for_user())


def _sections(scenario: str) -> dict[str, str]:
    """tau2's ``str(UserScenario)``: ``Persona:`` and ``Instructions:``, each tab-indented."""
    found = list(_SECTION.finditer(scenario))
    if not found or found[0].start() != 0:
        return {"Instructions": scenario}
    parts = {}
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(scenario)
        parts[match.group(1)] = textwrap.dedent(scenario[match.end() : end]).strip()
    return parts


def read_user_instructions(
    system: str, *, default_persona: str = DEFAULT_PERSONA
) -> UserInstructions:
    """The persona and goal in a harness's system message for its user model.

    tau2-bench: the ``<scenario>`` block (its ``Persona:`` and ``Instructions:`` sections);
    tau-bench: the ``Instruction:`` paragraph before ``Rules:``. Text in neither form is the
    persona, with no goal. A scenario without a persona gets ``default_persona``.
    """
    scenario = _SCENARIO.search(system)
    if scenario is not None:
        parts = _sections(scenario.group(1))
        persona = parts.get("Persona") or default_persona
        return UserInstructions(persona, parts.get("Instructions", ""))
    instruction = _TAU_INSTRUCTION.search(system)
    if instruction is not None:
        return UserInstructions(default_persona, instruction.group(1).strip())
    return UserInstructions(system.strip() or default_persona)


def _text(message: Mapping[str, Any], where: str) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, Mapping))
    if not isinstance(content, str):
        raise ConversationError("content must be a string", param=f"{where}.content")
    return content


def from_harness_messages(
    messages: Sequence[Any], *, default_persona: str = DEFAULT_PERSONA
) -> tuple[UserInstructions, list[dict[str, str]]]:
    """A harness's messages to its user model -> the instructions and the conversation in
    humanlm's roles (``user`` = the simulated user, ``assistant`` = the agent).

    Raises:
        ConversationError: not a list of messages, a tool message or tool call (a humanlm user
            writes text only), an unknown role.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise ConversationError("must be a list of messages", param="messages")
    system, conversation = [], []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, Mapping):
            raise ConversationError("each message must be an object", param=where)
        role = m.get("role")
        if role == "tool" or m.get("tool_calls"):
            raise ConversationError(
                "tool messages and tool calls are not supported: a humanlm user writes text "
                "only (run the benchmark's domains without user tools)",
                param=where,
            )
        text = _text(m, where)
        if role in ("system", "developer"):
            system.append(text)
        elif role == "assistant":  # the user model's own earlier turn
            conversation.append({"role": "user", "content": text})
        elif role == "user":  # the agent's turn
            conversation.append({"role": "assistant", "content": text})
        else:
            raise ConversationError(
                f"unknown role {role!r}; use system, user or assistant", param=f"{where}.role"
            )
    instructions = read_user_instructions("\n\n".join(system), default_persona=default_persona)
    # Empty turns (tau2 keeps an agent turn that only called tools) carry nothing for the user.
    return instructions, [m for m in conversation if m["content"].strip()]


@dataclass(frozen=True)
class BenchmarkTurn:
    """The user's next message for the harness.

    Attributes:
        content: the message: the user's text, or the stop token when the user stopped.
        stop: the user ended the conversation.
        reason: ``user_ended`` (the end signal), ``empty_user_turn`` (nothing written, also
            when asked again) or ``None`` (the user goes on).
        reply: the simulator's last reply (states, thinking, raw completion).
        redrawn: turns drawn again, by the fidelity check's reason.
    """

    content: str
    stop: bool
    reason: str | None
    reply: Reply
    redrawn: dict[str, int] = field(default_factory=dict)


class BenchmarkUser:
    """A humanlm simulator answering as a benchmark's user.

    Args:
        user: the simulator (``UserSimulator.from_spec(spec)``, a served one too).
        stop_text: what ``content`` is when the user stops (the harness's stop token).
        default_persona: the persona of a scenario that names none.
        empty_retries: how often an empty turn is drawn again before the user stops.
        fidelity_retries: how often an assistant-like turn, or one that copies the
            conversation, is drawn again (then the last draw is sent).
    """

    def __init__(
        self,
        user: User,
        *,
        stop_text: str = STOP,
        default_persona: str = DEFAULT_PERSONA,
        empty_retries: int = 2,
        fidelity_retries: int = 2,
    ):
        self.user = user
        self.stop_text = stop_text
        self.default_persona = default_persona
        self.empty_retries = empty_retries
        self.fidelity_retries = fidelity_retries

    def __repr__(self) -> str:
        return f"BenchmarkUser({self.user.spec!r}, stop_text={self.stop_text!r})"

    async def arespond(self, messages: Sequence[Any]) -> BenchmarkTurn:
        """The user's next turn for the harness's messages (async).

        Raises:
            ConversationError: messages that cannot be a conversation (``from_harness_messages``).
            HumanlmError: the simulator failed after its retries.
        """
        instructions, conversation = from_harness_messages(
            messages, default_persona=self.default_persona
        )
        persona = instructions.persona_for_user()
        redrawn: Counter[str] = Counter()
        while True:
            reply = await self.user.areply(persona, conversation)
            if reply.error:
                raise HumanlmError(f"the simulated user {self.user.spec} failed ({reply.error})")
            failed = None if reply.ended else check_user_turn(reply.text, conversation)
            bound = self.empty_retries if failed == "empty" else self.fidelity_retries
            if failed is None or redrawn[failed] >= bound:
                break
            redrawn[failed] += 1
        if reply.ended or failed == "empty":
            reason = "user_ended" if reply.ended else "empty_user_turn"
            return BenchmarkTurn(self.stop_text, True, reason, reply, dict(redrawn))
        return BenchmarkTurn(reply.text, False, None, reply, dict(redrawn))

    def respond(self, messages: Sequence[Any]) -> BenchmarkTurn:
        """The user's next turn (from synchronous code, as harnesses call their user model;
        not inside a running event loop). Connections are closed after each call."""

        async def once() -> BenchmarkTurn:
            try:
                return await self.arespond(messages)
            finally:
                await self.user.aclose()

        return asyncio.run(once())

    async def aclose(self) -> None:
        await self.user.aclose()


def _instructions_text(instructions: Any) -> str:
    """tau2's user instructions as its own ``str()`` renders them (structured or plain)."""
    if isinstance(instructions, str):
        return instructions.strip()
    if not isinstance(instructions, Mapping):
        raise ValueError("instructions must be text or an object")
    lines = [f"Domain: {instructions.get('domain', '')}"]
    for key, title in (
        ("reason_for_call", "Reason for call"),
        ("known_info", "Known info"),
        ("unknown_info", "Unknown info"),
        ("task_instructions", "Task instructions"),
    ):
        value = instructions.get(key)
        if value is not None:
            lines.append(f"{title}:\n{textwrap.indent(str(value), chr(9))}")
    return "\n".join(lines)


def tau2_scenarios(path: str | Path, *, default_persona: str = DEFAULT_PERSONA) -> list[Scenario]:
    """One scenario per task of a tau2-bench task file (``data/tau2/domains/*/tasks.json``):
    the task's ``user_scenario.persona`` as persona, its instructions as the goal.

    The scenarios have no opening turns (the simulated user opens); write them with
    ``write_scenarios`` for ``humanlm simulate --scenarios``.

    Raises:
        DataError: a missing file, not JSON, not a list of tasks with ``id`` and
            ``user_scenario.instructions`` (naming the task).
    """
    file = Path(path)
    if not file.is_file():
        raise DataError("no such tau2 task file", file=str(file))
    try:
        tasks = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise DataError("not a JSON file", file=str(file)) from None
    if not isinstance(tasks, list):
        raise DataError("a tau2 task file is a JSON list of tasks", file=str(file))
    scenarios = []
    for row, task in enumerate(tasks):
        user = task.get("user_scenario") if isinstance(task, Mapping) else None
        if not isinstance(user, Mapping) or "id" not in task or "instructions" not in user:
            raise DataError(
                "each task needs an id and user_scenario.instructions", file=str(file), row=row
            )
        try:
            goal = _instructions_text(user["instructions"])
        except ValueError as err:
            raise DataError(str(err), file=str(file), row=row, field="instructions") from None
        persona = str(user.get("persona") or "").strip() or default_persona
        scenarios.append(Scenario(str(task["id"]), persona, goal))
    return scenarios


def write_scenarios(path: str | Path, scenarios: Sequence[Scenario]) -> None:
    """Write scenarios as ``humanlm simulate --scenarios`` reads them (one JSON line each)."""
    write_jsonl(
        path,
        (
            {"id": s.id, "persona": s.persona, "goal": s.goal, "messages": list(s.messages)}
            for s in scenarios
        ),
    )

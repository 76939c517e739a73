"""The ```console blocks of the project's Markdown, parsed into the commands and output they show.

A block is run by tests/e2e/test_docs_run.py unless an HTML comment on the line before it says
why it cannot be (`<!-- docs-test: real-account -->`); see MARKERS.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# Why a block is only checked for syntax (bash -n, and its `provisioner` commands parse).
MARKERS = {
    "real-account": "needs a real Streamkap account, cluster or container runtime",
    "transcript": "output recorded from a longer scenario (time passing, hand-made credentials)",
    "development": "the project's own tooling (make, pytest)",
}

_FENCE = re.compile(r"^(?P<indent>\s*)```console\s*$")
_CLOSE = re.compile(r"^\s*```\s*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>[\w-]+)\s*-->\s*$")
_EXIT = re.compile(r"\bexits? (?P<code>\d+)\b")
_PORT_FLAG = re.compile(r"--(?:port|vault-port|kube-port)[ =](?P<port>\d+)\b")


@dataclass(frozen=True)
class Command:
    """One `$ ` prompt: the command as typed (continuation lines kept) and what it shows."""

    text: str
    output: tuple[str, ...]

    @property
    def background(self) -> bool:
        """Whether it ends in `&` (before any comment): a server the next commands talk to."""
        last = self.text.splitlines()[-1]
        code = last[: len(last) - len(_comment(self.text))].rstrip()
        return code.endswith("&") and not code.endswith("&&")

    @property
    def expected_exit(self) -> int:
        """The exit code the block's comment promises (`# ... exit 3 ...`), else 0."""
        comment = _comment(self.text)
        found = _EXIT.search(comment) if comment else None
        return int(found["code"]) if found else 0

    @property
    def ports(self) -> tuple[int, ...]:
        """The loopback ports a `provisioner simulate` command is told to serve on."""
        if "provisioner simulate" not in self.text:
            return ()
        return tuple(int(found["port"]) for found in _PORT_FLAG.finditer(self.text))


@dataclass(frozen=True)
class ConsoleBlock:
    path: Path
    line: int  # 1-based line of the opening fence
    marker: str | None  # None: run it against the simulator
    commands: tuple[Command, ...]

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def script(self) -> str:
        """The block's commands as one shell script, as a reader would type them."""
        return "\n".join(command.text for command in self.commands) + "\n"


def console_blocks(path: Path) -> list[ConsoleBlock]:
    """Every ```console block of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if _CLOSE.match(lines[i]))
        indent = len(opening["indent"])
        body = [line[indent:] for line in lines[index + 1 : end]]
        blocks.append(ConsoleBlock(path, index + 1, _marker(lines, index), _commands(body)))
        index = end + 1
    return blocks


def _marker(lines: list[str], fence: int) -> str | None:
    before = [line for line in lines[:fence] if line.strip()]
    found = _MARKER.match(before[-1]) if before else None
    return found["kind"] if found else None


def _commands(body: list[str]) -> tuple[Command, ...]:
    commands: list[Command] = []
    text: list[str] = []
    output: list[str] = []
    for line in body:
        if text and text[-1].endswith("\\") and not output:
            text.append(line)  # a continuation line of the command above
        elif line.startswith("$ "):
            if text:
                commands.append(Command("\n".join(text), tuple(output)))
            text, output = [line[2:]], []
        else:
            output.append(line)
    if text:
        commands.append(Command("\n".join(text), tuple(output)))
    return tuple(commands)


def _comment(text: str) -> str:
    """The trailing comment of a command's last line: a `#` after a blank, outside quotes."""
    last = text.splitlines()[-1]
    for found in re.finditer(r"\s#", last):
        before = last[: found.start()]
        if before.count("'") % 2 == 0 and before.count('"') % 2 == 0:
            return last[found.start() :].strip()
    return ""


_OPERATORS = frozenset({"&", "&&", "|", "||", ";"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def provisioner_argv(command: Command) -> list[list[str]]:
    """The arguments of each `provisioner ...` invocation in a command, for the CLI's parser.

    Also those given to the container image in `docker run` (its entry point is `provisioner`).
    """
    words = shlex.split(command.text.replace("\\\n", " "), comments=True)
    found = []
    at_start = True  # at a command's first word (after any VAR=value assignments)
    for index, word in enumerate(words):
        if word in _OPERATORS:
            at_start = True
        elif at_start and _ASSIGNMENT.match(word):
            continue
        elif at_start and word == "provisioner":
            found.append(_until_operator(words[index + 1 :]))
            at_start = False
        elif at_start and word == "docker" and words[index + 1 : index + 2] == ["run"]:
            image = next(
                i for i in range(index, len(words)) if words[i].startswith("streamkap-provisioner:")
            )
            found.append(_until_operator(words[image + 1 :]))
            at_start = False
        else:
            at_start = False
    return found


def _until_operator(words: list[str]) -> list[str]:
    for index, word in enumerate(words):
        if word in _OPERATORS:
            return words[:index]
    return words

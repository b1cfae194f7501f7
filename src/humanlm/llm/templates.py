"""Prompt-template folders: ``<package>/prompts/*.md`` with a ``VERSIONS`` file and its check.

Every folder of prompts (states, judge, enrichment) is one ``PromptFolder``. ``VERSIONS`` lists
``name version sha256[:12]`` per template; ``check()`` names every template whose text changed
without a bump, and a test runs it for every folder.

Example:
    >>> folder = PromptFolder("humanlm.judge")
    >>> folder.version("group")  # doctest: +SKIP
    '1'
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from humanlm.errors import ConfigError

__all__ = ["PromptFolder"]


class PromptFolder:
    """The ``prompts/`` folder of a package.

    Args:
        package: the package that holds ``prompts/`` (``humanlm.judge``).
    """

    def __init__(self, package: str):
        self.package = package

    def __repr__(self) -> str:
        return f"PromptFolder({self.package!r})"

    @property
    def where(self) -> str:
        return self.package.replace(".", "/") + "/prompts/"

    def _dir(self):  # noqa: ANN202 - importlib Traversable
        return resources.files(self.package) / "prompts"

    def load(self, name: str) -> str:
        """The text of ``<name>.md`` (trailing newlines removed).

        Raises:
            ConfigError: there is no such template.
        """
        return _load(self.package, name)

    def hash(self, name: str) -> str:
        """First 12 hex digits of the sha256 of a template's text."""
        return hashlib.sha256(self.load(name).encode("utf-8")).hexdigest()[:12]

    def versions(self) -> dict[str, str]:
        """Template name -> version, from ``VERSIONS``."""
        return {name: version for name, (version, _digest) in self._entries().items()}

    def version(self, name: str) -> str:
        """The version of template ``name``.

        Raises:
            ConfigError: ``VERSIONS`` does not list it.
        """
        versions = self.versions()
        if name not in versions:
            raise ConfigError(f"{self.where}VERSIONS lists no {name!r} template")
        return versions[name]

    def check(self) -> list[str]:
        """Templates whose text no longer matches the hash recorded in ``VERSIONS``."""
        problems = []
        for name, (_version, digest) in self._entries().items():
            actual = self.hash(name)
            if actual != digest:
                problems.append(
                    f"{self.where}{name}.md changed (hash {actual}, VERSIONS says {digest}): "
                    "bump its version and record the new hash"
                )
        names = {p.name[:-3] for p in self._dir().iterdir() if p.name.endswith(".md")}
        problems += [
            f"{self.where}{n}.md is not listed in VERSIONS"
            for n in sorted(names - set(self._entries()))
        ]
        return problems

    def _entries(self) -> dict[str, tuple[str, str]]:
        return _entries(self.package)


@cache
def _load(package: str, name: str) -> str:
    path = resources.files(package) / "prompts" / f"{name}.md"
    if not path.is_file():
        where = package.replace(".", "/")
        raise ConfigError(f"no prompt template named {name!r} in {where}/prompts/")
    return path.read_text(encoding="utf-8").rstrip("\n")


@cache
def _entries(package: str) -> dict[str, tuple[str, str]]:
    text = (resources.files(package) / "prompts" / "VERSIONS").read_text("utf-8")
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, version, digest = line.split()
            entries[name] = (version, digest)
    return entries

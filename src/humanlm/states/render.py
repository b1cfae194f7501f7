"""Prompt templates: loading, strict rendering and versions.

Templates live in ``prompts/*.md`` with ``{field}`` placeholders. ``prompts/VERSIONS`` maps each
template to a version and a content hash; a test fails when a template changes without a bump.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources

from humanlm.errors import ConfigError

__all__ = ["load_template", "prompt_versions", "render", "template_hash"]

_FIELD = re.compile(r"\{([a-z_]+)\}")


@cache
def load_template(name: str) -> str:
    """Return the text of ``prompts/<name>.md`` (trailing newline removed)."""
    path = resources.files("humanlm.states") / "prompts" / f"{name}.md"
    if not path.is_file():
        raise ConfigError(f"no prompt template named {name!r} in humanlm/states/prompts/")
    return path.read_text(encoding="utf-8").rstrip("\n")


def render(template: str, **fields: object) -> str:
    """Fill ``{field}`` placeholders; every placeholder must be given and every field used.

    Values are inserted once and never re-scanned, so braces inside a persona or a post are safe.

    Raises:
        ConfigError: a placeholder has no value, or a value has no placeholder.
    """
    wanted = set(_FIELD.findall(template))
    missing, unused = wanted - fields.keys(), fields.keys() - wanted
    if missing or unused:
        raise ConfigError(
            f"template fields do not match: missing {sorted(missing)}, unused {sorted(unused)}"
        )
    return _FIELD.sub(lambda m: str(fields[m.group(1)]), template)


def template_hash(name: str) -> str:
    """First 12 hex digits of the sha256 of a template's text."""
    return hashlib.sha256(load_template(name).encode("utf-8")).hexdigest()[:12]


@cache
def prompt_versions() -> dict[str, str]:
    """Map template name -> version string, read from ``prompts/VERSIONS``."""
    text = (resources.files("humanlm.states") / "prompts" / "VERSIONS").read_text("utf-8")
    versions = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, version, _digest = line.split()
            versions[name] = version
    return versions

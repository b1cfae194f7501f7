"""Prompt templates: loading, strict rendering and versions.

Templates live in ``prompts/*.md`` with ``{field}`` placeholders. ``prompts/VERSIONS`` maps each
template to a version and a content hash; a test fails when a template changes without a bump.
"""

from __future__ import annotations

import re

from humanlm.errors import ConfigError
from humanlm.llm.templates import PromptFolder

__all__ = ["PROMPTS", "load_template", "prompt_versions", "render", "template_hash"]

_FIELD = re.compile(r"\{([a-z_]+)\}")


PROMPTS = PromptFolder("humanlm.states")


def load_template(name: str) -> str:
    """Return the text of ``prompts/<name>.md`` (trailing newline removed)."""
    return PROMPTS.load(name)


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
    return PROMPTS.hash(name)


def prompt_versions() -> dict[str, str]:
    """Map template name -> version string, read from ``prompts/VERSIONS``."""
    return PROMPTS.versions()

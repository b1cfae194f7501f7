"""The judge fixtures (a scripted server, a judge on it) serve the LLM-layer tests too."""

from tests.judge.conftest import *  # noqa: F403

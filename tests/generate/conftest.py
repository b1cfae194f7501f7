"""The simulate tests' fixtures, shared: prepared demo examples and a scripted chat server."""

from tests.simulate.conftest import (  # noqa: F401 (fixtures are found by name)
    MIXED_DEMO,
    demo_examples,
    server,
)

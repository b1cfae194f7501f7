"""The evaluation tests' servers and config builder, shared: these tests score real eval runs."""

from tests.eval.conftest import (  # noqa: F401 (fixtures are found by name)
    MIXED_DEMO,
    demo_examples,
    echo_reply,
    judge_server,
    make_cfg,
    sim_server,
)

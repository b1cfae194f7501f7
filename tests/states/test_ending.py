"""The end signal: recognised only as a whole response."""

from __future__ import annotations

import pytest

from humanlm.states import END_SIGNAL, is_end_signal


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (END_SIGNAL, True),  # the signal
        (f"  {END_SIGNAL}\n", True),  # surrounding whitespace
        (f"thanks, bye {END_SIGNAL}", False),  # a message that mentions it is a message
        ("", False),  # empty is not an end
        (None, False),  # no reply
    ],
)
def test_is_end_signal(response: str | None, expected: bool) -> None:
    assert is_end_signal(response) is expected

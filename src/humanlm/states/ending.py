"""The end signal: how a simulated user says "I am done with this conversation".

Real users stop answering; a simulator has to say so. A model trained with end examples (see
``humanlm data prepare --end-examples``) writes ``END_SIGNAL`` as its whole response, e.g.
``<response><|endconversation|></response>``. Clients see it as ``Reply.ended`` (the Python API),
``humanlm.ended`` and ``finish_reason`` in the server's answer (docs/serve.md), and
``end_reason: user_ended`` in simulated conversations.

Example:
    >>> is_end_signal(" <|endconversation|>\\n")
    True
"""

from __future__ import annotations

__all__ = ["END_SIGNAL", "is_end_signal"]

# The same spelling as other user simulators that learn an end-of-conversation marker.
END_SIGNAL = "<|endconversation|>"


def is_end_signal(response: str | None) -> bool:
    """True when ``response`` (the reply text, tags removed) is the end signal and nothing else."""
    return response is not None and response.strip() == END_SIGNAL

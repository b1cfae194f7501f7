"""Serving a user simulator: the OpenAI-compatible HTTP app.

- ``build_app(simulator, model_name=...)`` -> a FastAPI app; ``run_serve(model=...)`` runs it.
  Concurrent requests to an ``hf:`` model share one batch (``humanlm.generate.BatchingGenerator``).
"""

from humanlm.serve.app import build_app, run_serve

__all__ = ["build_app", "run_serve"]

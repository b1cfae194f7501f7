"""Serving a user simulator: the OpenAI-compatible HTTP app and dynamic batching.

- ``build_app(simulator, model_name=...)`` -> a FastAPI app; ``run_serve(model=...)`` runs it;
- ``BatchingEngine(engine)``: concurrent requests share one ``generate`` call.
"""

from humanlm.serve.app import build_app, run_serve
from humanlm.serve.batching import BatchingEngine

__all__ = ["BatchingEngine", "build_app", "run_serve"]

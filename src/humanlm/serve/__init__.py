"""Serving a user simulator: the OpenAI-compatible HTTP app.

- ``build_app(simulator, model_name=...)`` -> a FastAPI app; ``run_serve(model=...)`` runs it.
  Concurrent requests to an ``hf:`` model share one batch (``humanlm.generate.BatchingGenerator``).

Modules: ``app`` (routes, ``run_serve``), ``protocol`` (the OpenAI wire format), ``guard`` (API
key, body limit, access log), ``limits`` (request limits).
"""

from humanlm._lazy import lazy_exports

# The app imports FastAPI and the generators: loaded when first named, so ``limits`` is light.
__getattr__ = lazy_exports(__name__, {"build_app": "app", "run_serve": "app"})

__all__ = ["build_app", "run_serve"]

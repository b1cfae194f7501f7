"""humanlm: train and evaluate user simulators with state alignment (HumanLM) on Humanual."""

from humanlm.errors import ConfigError, DataError, HumanlmError, JudgeUnavailableError

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "HumanlmError",
    "JudgeUnavailableError",
    "Reply",
    "UserSimulator",
    "__version__",
]


def __getattr__(name: str) -> object:
    # Imported on first use, so `import humanlm` stays light.
    if name in ("Reply", "UserSimulator"):
        from humanlm.simulate import user

        return getattr(user, name)
    raise AttributeError(f"module 'humanlm' has no attribute {name!r}")

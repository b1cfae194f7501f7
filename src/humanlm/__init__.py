"""humanlm: train and evaluate user simulators with state alignment (HumanLM) on Humanual."""

from humanlm._lazy import lazy_exports
from humanlm.errors import ConfigError, DataError, HumanlmError, JudgeUnavailableError

__version__ = "0.1.0"

# Imported on first use, so `import humanlm` stays light.
_WHERE = {"Reply": "simulate.reply", "UserSimulator": "simulate.user"}

__getattr__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "ConfigError",
    "DataError",
    "HumanlmError",
    "JudgeUnavailableError",
    "Reply",
    "UserSimulator",
    "__version__",
]

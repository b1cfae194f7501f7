"""humanlm: train and evaluate user simulators with state alignment (HumanLM) on Humanual."""

from humanlm.errors import ConfigError, DataError, HumanlmError, JudgeUnavailableError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "HumanlmError", "JudgeUnavailableError", "__version__"]

"""``humanlm demo``: the mini Table 1 offline on a CPU (base, SFT, GRPO and HumanLM) as one command.

- ``run_demo(out_dir)`` (``run``): prepare the bundled demo world, start from the shipped demo
  base, train the three methods from it, evaluate all four and write the comparison;
- ``build_demo_base`` (``base``): how the shipped demo base is built (by
  ``scripts/build_demo_base.py``);
- ``write_demo_report`` (``report``): the demo's ``report.md``; ``charts``: its reward and loss
  charts;
- ``demo_config_path()``: the shipped demo preset.
"""

from humanlm._lazy import lazy_exports

# Imported on first use: tests and presets read demo_config_path without the training stack.
_WHERE = {
    "DEMO_METHODS": "run",
    "DemoResult": "run",
    "demo_config_path": "run",
    "run_demo": "run",
    "write_demo_report": "report",
}

__getattr__ = lazy_exports(__name__, _WHERE)

__all__ = sorted(_WHERE)

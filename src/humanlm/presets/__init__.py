"""Packaged run presets (the demo config also appears as configs/demo.yaml)."""

"""forgetlab: catastrophic forgetting, studied fast. See README.md.

The names below load on first use, so ``import forgetlab.config`` (torch-free) stays light."""

from __future__ import annotations

import importlib

_LAZY = {
    "run": "api",
    "make_config": "api",
    "RunConfig": "config",
    "ForgetlabError": "errors",
    "Context": "engine.hooks",
    "Hook": "engine.hooks",
    "PRESETS": "config.presets",
    "Results": "outputs.results",
    "load": "outputs.results",
}

__all__ = ["run", "make_config", "load", "RunConfig", "Results", "Hook", "Context", "PRESETS", "ForgetlabError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'forgetlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value

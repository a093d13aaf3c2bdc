"""forgetlab: catastrophic forgetting, studied fast. See README.md.

The names below load their module on first use, so a command (or a worker process) imports only what
it needs: ``import forgetlab.pool`` does not load torch.
"""
from importlib import import_module

_EXPORTS = {"run": "api", "make_config": "api", "load": "results", "RunConfig": "config", "Results": "results",
            "Hook": "hooks", "Context": "hooks", "PRESETS": "presets", "ForgetlabError": "errors"}
__all__ = ["run", "make_config", "load", "RunConfig", "Results", "Hook", "Context", "PRESETS", "ForgetlabError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'forgetlab' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])

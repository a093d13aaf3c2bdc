"""Continual-learning strategies: each a small ``Hook`` registered by name, batched over members E.

    from forgetlab.strategies import STRATEGIES, make
    hooks = make(config)           # [the strategy named config.strategy.name]

Each strategy declares its hyperparameters as a frozen ``Settings`` dataclass next to its code, and
``register(name)`` records both (``--set strategy.<name>.<field>=...``); each one's ``check(config)``
rejects impossible combinations with a one-line ConfigError before any work starts. The modules below
register themselves when this package is imported (explicit imports, no scanning).
"""
from __future__ import annotations

from ..config import RunConfig
from ..hooks import Hook
from .base import STRATEGIES, Strategy, register
from . import baselines, regularization, replay, distillation, mas  # noqa: F401,E402  (fill the registry)


def make(config: RunConfig) -> list[Hook]:
    return [STRATEGIES[config.strategy.name](config)]


def validate(config: RunConfig) -> None:
    STRATEGIES[config.strategy.name].check(config)


__all__ = ["STRATEGIES", "Strategy", "make", "register", "validate"]

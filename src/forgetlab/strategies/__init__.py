"""Continual-learning strategies: each a small ``Hook`` registered by name, batched over members E.

    from forgetlab.strategies import STRATEGIES, make
    hooks = make(config)           # [the strategy named config.strategy.name]

Each strategy declares its hyperparameters as a frozen ``Settings`` dataclass next to its code, and
``register(name)`` records both (``--set strategy.<name>.<field>=...``); each one's ``check(config)``
rejects impossible combinations with a one-line ConfigError before any work starts. The modules below
register themselves when this package is imported (explicit imports, no scanning).
"""

from __future__ import annotations

from forgetlab.config import RunConfig
from forgetlab.engine.hooks import Hook
from forgetlab.strategies.base import STRATEGIES, Strategy, register, resolve

# every built-in strategy, one module each, in the order listings show them (explicit imports fill the
# registry; no directory scanning)
# isort: off
from forgetlab.strategies import naive  # noqa: F401
from forgetlab.strategies import joint  # noqa: F401
from forgetlab.strategies import cumulative  # noqa: F401
from forgetlab.strategies import kwta  # noqa: F401
from forgetlab.strategies import ewc  # noqa: F401
from forgetlab.strategies import si  # noqa: F401
from forgetlab.strategies import er  # noqa: F401
from forgetlab.strategies import agem  # noqa: F401
from forgetlab.strategies import gem  # noqa: F401
from forgetlab.strategies import der  # noqa: F401
from forgetlab.strategies import lwf  # noqa: F401
from forgetlab.strategies import icarl  # noqa: F401
from forgetlab.strategies import mas  # noqa: F401
# isort: on


def make(config: RunConfig) -> list[Hook]:
    return [STRATEGIES[config.strategy.name](config)]


def validate(config: RunConfig) -> None:
    STRATEGIES[config.strategy.name].check(config)


__all__ = ["STRATEGIES", "Strategy", "make", "register", "resolve", "validate"]

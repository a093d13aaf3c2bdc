"""k-winners-take-all hidden layers trained naively: the study's sparsity question as an architecture."""

from __future__ import annotations

from forgetlab.errors import ConfigError
from forgetlab.strategies.base import Strategy, register


@register("kwta")
class KWinners(Strategy):
    """Naive training of a network whose hidden layers are k-winners-take-all (model.kwta, model.kwta_boost).

    The sparsity question of the study, as an architecture: only k units per layer may be active.
    """

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if not config.model.kwta:
            raise ConfigError("strategy 'kwta' needs model.kwta: one k per hidden layer, e.g. model.kwta=20,20")

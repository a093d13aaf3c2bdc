"""The run configuration: what a run is (``run``), how values are read into it (``values``), how it is
checked (``validate``) and named (``identity``); the strategies' settings (``strategy``), the named
experiments (``presets``) and the name registries (``registry``).

    from forgetlab import config as cfg
    config = cfg.override(cfg.RunConfig(), "train.lr", "0.05")
"""

from __future__ import annotations

from forgetlab.config.identity import identity, member_identity
from forgetlab.config.run import (
    ARCHS,
    DATASETS,
    DEVICES,
    EVAL_SPLITS,
    INITS,
    MEMBER_KEYS,
    N_CLASSES,
    NORMS,
    OPTIMIZERS,
    PROTOCOLS,
    SCENARIOS,
    SECTIONS,
    SPLIT_MNIST,
    DataConfig,
    Member,
    ModelConfig,
    ProtocolConfig,
    RunConfig,
    TrainConfig,
    data_root,
    members,
)
from forgetlab.config.strategy import StrategyConfig
from forgetlab.config.validate import validate
from forgetlab.config.values import (
    assignments,
    from_dict,
    get,
    key_type,
    load_file,
    override,
    parse_assignment,
    to_dict,
    valid_keys,
    with_grid,
    with_plugins,
)

__all__ = [
    "ARCHS",
    "DATASETS",
    "DEVICES",
    "EVAL_SPLITS",
    "INITS",
    "MEMBER_KEYS",
    "N_CLASSES",
    "NORMS",
    "OPTIMIZERS",
    "PROTOCOLS",
    "SCENARIOS",
    "SECTIONS",
    "SPLIT_MNIST",
    "DataConfig",
    "Member",
    "ModelConfig",
    "ProtocolConfig",
    "RunConfig",
    "StrategyConfig",
    "TrainConfig",
    "assignments",
    "data_root",
    "from_dict",
    "get",
    "identity",
    "key_type",
    "load_file",
    "member_identity",
    "members",
    "override",
    "parse_assignment",
    "to_dict",
    "valid_keys",
    "validate",
    "with_grid",
    "with_plugins",
]

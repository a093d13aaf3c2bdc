"""A run's identity: a digest of every value that changes its numbers, the name under which the store and
every cache find it. Identities already published must not change: the rules that keep them live here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import forgetlab.config.strategy as strategy_settings
from forgetlab.config.run import SECTIONS, DataConfig, Member, RunConfig
from forgetlab.config.values import to_dict


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# The fields identities were first published with. The rule for every other field, present or future: it
# enters an identity only where it differs from its default, so adding a field changes no identity.
# data.root and data.download change no number: the first is left out, the second held at its default.
_FIRST_FIELDS = {
    "data": ("dataset", "eval_split", "holdout_fraction", "download"),
    "model": ("arch", "hidden", "norm", "dropout"),
    "protocol": ("kind", "tasks"),
    "train": ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "l1"),
}


def _identity_dict(config: RunConfig) -> dict:
    d, out = to_dict(config), {}
    for section in SECTIONS:
        default = json.loads(json.dumps(dataclasses.asdict(type(getattr(config, section))())))  # tuples as lists
        out[section] = {k: v for k, v in d[section].items() if k in _FIRST_FIELDS[section] or v != default[k]}
    out["data"].pop("root", None)
    out["data"]["download"] = DataConfig.download
    strategy = strategy_settings.identity_dict(config.strategy)
    if strategy is not None:
        out["strategy"] = strategy
    return out


def identity(config: RunConfig) -> str:
    """Stable id of everything that determines a run's numbers (seeds and grid values included)."""
    return digest({**_identity_dict(config), "seeds": list(config.seeds), "grid": {k: list(v) for k, v in config.grid}})


def member_identity(config: RunConfig, member: Member) -> str:
    """Stable id of one (config, seed) member, independent of which other members train beside it."""
    d = _identity_dict(config)
    for key, value in member.hparams.items():
        section, _, name = key.partition(".")
        d[section][name] = value
    d["seed"] = member.seed
    return digest(d)

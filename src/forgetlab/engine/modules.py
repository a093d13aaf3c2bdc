"""Any ``torch.nn.Module`` classifier as an ensemble member.

The convention is the study's: ``forward(x)`` returns the logits ``[B, classes]``, or ``(logits, hidden)``
where ``hidden`` is one tensor or a list of tensors (any shape with the batch first; flattened per
example). forgetlab builds one copy per member, each under its own seeded random stream (so a member's
initial weights do not depend on which members train beside it), stacks their parameters and buffers
with a leading member axis (``torch.func.stack_module_state``) and runs every member as one program:
``torch.func.functional_call`` under ``torch.vmap``. Batch-norm running statistics are stacked buffers,
updated in place per member; dropout draws different masks per member (``randomness="different"``). On
the CPU those draws come from a random stream of the ensemble's own, seeded from the first member's seed
(so a member's masks, unlike its initial weights, depend on the ensemble it is in); on a GPU from torch's
CUDA generator.

A module is named by ``package.module:ClassName`` (importable) or ``path/to/file.py:ClassName``; a class
or factory given to ``forgetlab.run(model=...)`` is registered under its qualified name for this process.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from forgetlab import plugins
from forgetlab.config import ModelConfig
from forgetlab.data import seeding
from forgetlab.engine.models import EnsembleNet, Output
from forgetlab.engine.models import build as build_builtin
from forgetlab.errors import ConfigError

# classes and factories handed to the API in this process, by the spec recorded in the config
_GIVEN: dict[str, Callable[..., nn.Module]] = {}


def register(factory: Callable[..., nn.Module]) -> str:
    """Record a class or factory given from Python; returns the spec that names it in the config."""
    if not callable(factory):
        raise ConfigError(f"model={factory!r} is not a class or factory of torch.nn.Module")
    spec = (
        f"{getattr(factory, '__module__', None) or 'python'}:{getattr(factory, '__qualname__', type(factory).__name__)}"
    )
    _GIVEN[spec] = factory
    return spec


def resolve(spec: str) -> Callable[..., nn.Module]:
    """The class or factory a ``model.module`` spec names (``forgetlab.plugins``), or a one-line ConfigError."""
    if spec in _GIVEN:
        return _GIVEN[spec]
    obj = plugins.load(spec, "model.module")
    if not callable(obj):
        raise ConfigError(f"model.module={spec!r}: {spec.rpartition(':')[2]} is not a class or factory")
    return obj


def module_args(text: str) -> dict:
    """``model.module_args``: a JSON object of keyword arguments ('' = none)."""
    if not text.strip():
        return {}
    try:
        args = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"model.module_args={text!r} is not valid JSON ({e.msg}); e.g. '{{\"n_classes\": 10}}'"
        ) from None
    if not isinstance(args, dict):
        raise ConfigError(f"model.module_args={text!r} must be a JSON object of keyword arguments")
    return args


def split_output(out) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """``logits`` or ``(logits, hidden)`` with hidden a tensor or a list/tuple of tensors -> (logits, hiddens)."""
    if isinstance(out, torch.Tensor):
        return out, ()
    if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor):
        hidden = out[1]
        if isinstance(hidden, torch.Tensor):
            return out[0], (hidden,)
        if isinstance(hidden, (tuple, list)) and all(isinstance(h, torch.Tensor) for h in hidden):
            return out[0], tuple(hidden)
    raise TypeError("forward must return logits, or (logits, hidden) with hidden a tensor or a list of tensors")


def _at(module: nn.Module, name: str):
    """The tensor at a dotted name (whatever ``functional_call`` has swapped in)."""
    for part in name.split("."):
        module = getattr(module, part)
    return module


def _put(module: nn.Module, name: str, value) -> None:
    *path, leaf = name.split(".")
    for part in path:
        module = getattr(module, part)
    setattr(module, leaf, value)


class ModuleEnsemble(nn.Module):
    """E copies of a user module, parameters and buffers stacked on a leading member axis under ``net``."""

    def __init__(
        self,
        factory: Callable[..., nn.Module],
        kwargs: dict,
        seeds: list[int],
        n_units: int,
        input_shape: tuple[int, ...],
        device,
        label: str = "the module",
    ):
        super().__init__()
        self.n_members, self.input_shape, self.label = len(seeds), tuple(input_shape), label
        copies = [self._make(factory, kwargs, s).to(device) for s in seeds]
        self.hidden_units = self._check_output(copies[0], n_units, device)
        params, buffers = stack_module_state(copies)
        # the structure functional_call runs (in a list: not a submodule, so not in the parameters or state dict)
        self._stateless = [copy.deepcopy(copies[0]).to("meta")]
        self.net = copies[0]  # holds the stacked tensors below, never called itself
        for name, value in params.items():
            _put(self.net, name, nn.Parameter(value.detach()))
        for name, value in buffers.items():
            _put(self.net, name, value)
        self._param_names, self._buffer_names = list(params), list(buffers)
        gen = torch.Generator(device="cpu").manual_seed(seeding.stream_seed(seeds[0], seeding.DROPOUT))
        self._rng_state = gen.get_state()
        self._check_vmap(device)

    def _make(self, factory, kwargs: dict, seed: int) -> nn.Module:
        """One member, built while torch's default generator is seeded with that member's init stream."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeding.stream_seed(seed, seeding.INIT))
            try:
                module = factory(**kwargs)
            except Exception as e:  # noqa: BLE001 - the user's constructor
                raise ConfigError(
                    f"model.module {self.label}: building it with model.module_args={kwargs} "
                    f"failed ({type(e).__name__}: {e})"
                ) from None
        if not isinstance(module, nn.Module):
            raise ConfigError(f"model.module {self.label} returned {type(module).__name__}, not a torch.nn.Module")
        return module

    def _check_output(self, module: nn.Module, n_units: int, device) -> tuple[int, ...]:
        """Run one member alone on two zero inputs; say in one line what is wrong with its output."""
        x = torch.zeros(2, *self.input_shape, device=device)
        module.eval()
        try:
            with torch.no_grad():
                logits, hidden = split_output(module(x))
        except Exception as e:  # noqa: BLE001 - the user's forward
            raise ConfigError(
                f"model.module {self.label}: forward on a batch of shape {list(x.shape)} failed "
                f"({type(e).__name__}: {e}); model.module_input=flat passes [B, features], "
                f"image passes [B, C, H, W]"
            ) from None
        finally:
            module.train()
        if tuple(logits.shape) != (2, n_units):
            raise ConfigError(
                f"model.module {self.label}: logits of shape {list(logits.shape)} for a batch of "
                f"{list(x.shape)}; the data needs [2, {n_units}] (one score per class; set the class "
                f"count through model.module_args)"
            )
        for i, h in enumerate(hidden):
            if h.dim() < 2 or h.shape[0] != 2:
                raise ConfigError(
                    f"model.module {self.label}: hidden tensor {i} has shape {list(h.shape)}; "
                    f"each needs the batch (2) first"
                )
        return tuple(h[0].numel() for h in hidden)

    def _check_vmap(self, device) -> None:
        try:
            with torch.no_grad():
                self.eval()
                self(torch.zeros(2, self.n_inputs, device=device))
        except Exception as e:  # noqa: BLE001 - an operation torch.vmap cannot batch
            raise ConfigError(
                f"model.module {self.label} runs alone but not under torch.vmap "
                f"({type(e).__name__}: {e}); see torch.func's UX limitations"
            ) from None
        finally:
            self.train()

    @property
    def n_inputs(self) -> int:
        return int(torch.tensor(self.input_shape).prod())

    @contextlib.contextmanager
    def _random_stream(self):
        """Dropout and any other random draw in training mode come from the ensemble's own stream."""
        if not self.training:
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            yield
            self._rng_state = torch.get_rng_state()

    def linear_stack(self) -> None:
        """A user module's layers are not known: no consumer may assume a plain linear stack."""
        return None

    def forward(self, x: torch.Tensor) -> Output:
        """x [N, features] (one batch shared by every member) or [E, B, features] -> logits [E, B, C]."""
        shared = x.dim() == 2
        x = x.reshape(*x.shape[:-1], *self.input_shape)
        params = {n: _at(self.net, n) for n in self._param_names}
        buffers = {n: _at(self.net, n) for n in self._buffer_names}
        stateless = self._stateless[0]
        stateless.train(self.training)

        def one(p, b, xx):
            return split_output(functional_call(stateless, (p, b), (xx,)))

        with self._random_stream():
            logits, hidden = vmap(one, in_dims=(0, 0, None if shared else 0), randomness="different")(
                params, buffers, x
            )
        return Output(logits, [h.flatten(2) for h in hidden])


MODULE_INPUTS = ("flat", "image")


def check(cfg: ModelConfig, grid=()) -> None:
    """The model settings that go with ``model.module`` (the module itself is resolved by ``resolve``)."""
    if cfg.module_input not in MODULE_INPUTS:
        raise ConfigError(
            f"model.module_input={cfg.module_input!r} is not valid; choose one of: {', '.join(MODULE_INPUTS)}"
        )
    if cfg.module and (
        cfg.norm != "none" or cfg.kwta or cfg.dropout or "model.dropout" in dict(grid) or cfg.init != "torch"
    ):
        raise ConfigError(
            "model.norm, model.kwta, model.dropout and model.init shape the built-in networks; with "
            "model.module, put normalisation, dropout and initialisation in your module"
        )


def build(
    cfg: ModelConfig,
    seeds: list[int],
    dropout: torch.Tensor,
    device,
    n_classes: int = 10,
    input_shape: tuple[int, ...] = (1, 28, 28),
) -> EnsembleNet | ModuleEnsemble:
    """The ensemble of ``cfg``: the user's module when ``model.module`` is set, else a built-in network."""
    if not cfg.module:
        return build_builtin(cfg, seeds, dropout, device, n_classes=n_classes, input_shape=input_shape)
    check(cfg)
    if dropout.any():  # a grid over model.dropout
        raise ConfigError("model.dropout shapes the built-in networks; with model.module, put dropout in your module")
    n_inputs = int(torch.tensor(input_shape).prod())
    shape = (n_inputs,) if cfg.module_input == "flat" else tuple(input_shape)
    return ModuleEnsemble(
        resolve(cfg.module), module_args(cfg.module_args), seeds, n_classes, shape, device, label=cfg.module
    )

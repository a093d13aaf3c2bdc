"""Ensemble networks: every parameter carries a leading member axis E.

Activations are ``[E, B, features]``. Evaluation may pass one shared ``[B, 784]`` batch, which is
broadcast to every member. Each member is initialised from its own generator exactly as
``nn.Linear``/``nn.Conv2d`` would be (uniform in +-1/sqrt(fan_in)), and draws its own dropout masks,
so a member's numbers do not depend on which other members train beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from forgetlab.config import ModelConfig
from forgetlab.config.registry import Registry
from forgetlab.data import seeding
from forgetlab.errors import ConfigError

MODELS: Registry[type[EnsembleNet]] = Registry("model")


@dataclass
class Output:
    logits: torch.Tensor  # [E, B, C]
    hidden: list[torch.Tensor]  # per hidden layer, [E, B, H], after the nonlinearity (and dropout)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in evaluation mode (no dropout, batch norm's running statistics) for the block; its
    training flag is restored afterwards, whatever it was."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def member_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy of every member: logits [E, N, C], target [E, N] or shared [N] -> [E, N].

    Computed classes-first ([E, C, N]): a log-softmax over 10 classes runs ~10x faster across a strided
    dimension than along a contiguous one of size 10 (same values).
    """
    E, N = logits.shape[:2]
    return F.cross_entropy(logits.transpose(1, 2).contiguous(), target.expand(E, N), reduction="none")


def _uniform(shape, bound: float, gens: list[torch.Generator], device) -> torch.Tensor:
    """Drawn on the CPU from each member's generator, so a seed means the same weights on any device."""
    draws = torch.stack([torch.rand(shape, generator=g) for g in gens])
    return draws.mul_(2 * bound).sub_(bound).to(device)


class _LinearFn(torch.autograd.Function):
    """out = x @ W + b per member, with a backward of plain bmm calls (no copies, no scaling by 1).

    Written in the forward/setup_context style so torch.func (vmap, grad) can transform it: EWC's
    per-example Fisher uses that.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, bias):
        return torch.baddbmm(bias, x, weight)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        gx = torch.bmm(g, weight.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        return gx, torch.bmm(x.transpose(1, 2), g), g.sum(1, keepdim=True)


def stack_backward(x: torch.Tensor, ws, hidden, g: torch.Tensor | None, g_hidden, need_gx: bool):
    """Backward of Linear+ReLU ... Linear, every member at once: from the logits' gradient ``g`` and an
    optional extra gradient per hidden activation (a loss term on it, e.g. the L1 penalty; None for none).

    x [E, B, in], ws the weights, hidden the ReLU outputs. Per layer: bmm weight gradient, bias gradient
    summed over the batch, the input's gradient through the ReLU's mask (``threshold_backward``, as
    autograd's ReLU). Returns ([gW0, gb0, gW1, gb1, ...], the gradient of x or None).
    """
    inputs = (x, *hidden)
    grads: list[torch.Tensor | None] = [None] * (2 * len(ws))
    g_in = None
    for i in range(len(ws) - 1, -1, -1):
        g_in = None
        if g is not None:
            grads[2 * i] = torch.bmm(inputs[i].transpose(1, 2), g)
            grads[2 * i + 1] = g.sum(1, keepdim=True)
            if i > 0 or need_gx:
                g_in = torch.bmm(g, ws[i].transpose(1, 2))
        if i == 0:
            break
        extra = g_hidden[i - 1]
        if extra is not None:
            g_in = extra if g_in is None else g_in + extra
        g = None if g_in is None else torch.ops.aten.threshold_backward(g_in, hidden[i - 1], 0)  # ReLU's derivative
    return grads, g_in


class _StackFn(torch.autograd.Function):
    """A fully connected stack (Linear+ReLU ... Linear) of every member as one autograd node; returns
    (logits, *hidden activations).

    The same operations as ``_LinearFn`` and ``F.relu`` per layer (baddbmm forward, each ReLU in place on
    its fresh product; ``stack_backward``), so the same numbers to the last bit, without an autograd node,
    saved-tensor bookkeeping and a Python ``backward`` call per layer and per ReLU: 20-25% of a one-member
    forward and backward of the 784-120-84-10 MLP at batch 64. Written in the setup_context style with a
    generated vmap rule, so torch.func (vmap, grad: EWC's per-example Fisher) can transform it.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, *params):
        hidden, h = [], x
        for w, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
            h = torch.baddbmm(b, h, w).clamp_min_(0)
            hidden.append(h)
        return (torch.baddbmm(params[-1], h, params[-2]), *hidden)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)  # an unused activation (no L1 term) gets None, not zeros
        ctx.n = len(inputs) // 2
        ctx.save_for_backward(inputs[0], *inputs[1::2], *output[1:])

    @staticmethod
    def backward(ctx, g_logits, *g_hidden):
        saved, n = ctx.saved_tensors, ctx.n
        grads, gx = stack_backward(
            saved[0], saved[1 : 1 + n], saved[1 + n :], g_logits, g_hidden, ctx.needs_input_grad[0]
        )
        return (gx, *grads)


class Linear(nn.Module):
    """E independent affine maps: weight [E, in, out], bias [E, 1, out]."""

    def __init__(self, fan_in: int, fan_out: int, gens: list[torch.Generator], device, init: str = "torch"):
        """``init``: "torch", nn.Linear's uniform in +-1/sqrt(fan_in) for weights and biases; "xavier",
        Xavier-uniform weights (+-sqrt(6/(fan_in+fan_out))) and zero biases."""
        super().__init__()
        xavier = init == "xavier"
        bound = math.sqrt(6 / (fan_in + fan_out)) if xavier else 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(_uniform((fan_in, fan_out), bound, gens, device))
        bias = (
            torch.zeros(len(gens), 1, fan_out, device=device) if xavier else _uniform((1, fan_out), bound, gens, device)
        )
        self.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # one batch shared by every member: a single [N, in] x [in, E*out] product
            return self.unshare(torch.addmm(self.bias.view(1, -1), x, self.shared_weight()))
        return _LinearFn.apply(x, self.weight, self.bias)

    def shared_weight(self) -> torch.Tensor:
        """[in, E*out]: every member's weight side by side, for one product with a shared batch."""
        E, fan_in, fan_out = self.weight.shape
        return self.weight.transpose(0, 1).reshape(fan_in, E * fan_out)

    def unshare(self, out: torch.Tensor) -> torch.Tensor:
        """[N, E*out] (a shared batch's product) -> the [E, N, out] view."""
        E, _, fan_out = self.weight.shape
        return out.view(-1, E, fan_out).transpose(0, 1)


class Norm(nn.Module):
    """Batch norm (nn.BatchNorm1d's maths, per member) or layer norm, with a per-member affine."""

    running_mean: torch.Tensor  # buffers of batch norm, [E, units]
    running_var: torch.Tensor

    def __init__(self, kind: str, n_members: int, units: int, device):
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(torch.ones(n_members, 1, units, device=device))
        self.bias = nn.Parameter(torch.zeros(n_members, 1, units, device=device))
        if kind == "batch":
            self.register_buffer("running_mean", torch.zeros(n_members, units, device=device))
            self.register_buffer("running_var", torch.ones(n_members, units, device=device))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "layer":
            return F.layer_norm(h, h.shape[-1:]) * self.weight + self.bias
        # [E, B, H] -> [B, E*H]: one fused batch-norm call normalises every member over its own batch
        E, B, H = h.shape
        flat = h.transpose(0, 1).reshape(B, E * H)
        out = F.batch_norm(
            flat,
            self.running_mean.view(-1),
            self.running_var.view(-1),
            self.weight.view(-1),
            self.bias.view(-1),
            self.training,
            0.1,
            1e-5,
        )
        return out.view(B, E, H).transpose(0, 1)


class KWTA(nn.Module):
    """k-winners-take-all: per example, only the k largest units of a layer stay active.

    With boosting (Ahmad & Scheinkman 2019, "How can we be so dense?"), units that have been active
    less often than k/units are favoured when winners are chosen: the ranking uses
    h * exp(beta * (k/units - duty)), the output keeps the unboosted values. The duty cycle is a
    running mean of each unit's win rate over training batches, per member.
    """

    duty: torch.Tensor  # buffer [E, 1, units]

    def __init__(self, k: int, units: int, n_members: int, boost: float, device, period: int = 1000):
        super().__init__()
        self.k, self.boost, self.density, self.alpha = k, boost, k / units, 1.0 / period
        self.register_buffer("duty", torch.full((n_members, 1, units), k / units, device=device))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        rank = h * torch.exp(self.boost * (self.density - self.duty)) if self.boost and self.training else h
        winners = torch.zeros_like(h).scatter_(-1, rank.topk(self.k, -1).indices, 1.0)
        if self.training and h.dim() == 3:
            self.duty.mul_(1 - self.alpha).add_(self.alpha * winners.mean(1, keepdim=True))
        return F.relu(h) * winners


class EnsembleNet(nn.Module):
    """Base: hidden fully connected stack with optional norm and dropout, then a linear head."""

    convolutional = False  # a subclass whose ``features`` run before the fully connected stack says so
    dropout: torch.Tensor  # buffer [E, 1, 1]: each member's dropout probability

    def __init__(
        self, cfg: ModelConfig, seeds: list[int], dropout: torch.Tensor, in_features: int, n_classes: int, device
    ):
        super().__init__()
        gens = seeding.generators(seeds, seeding.INIT)
        self.n_members = len(seeds)
        sizes = (in_features, *cfg.hidden)
        self.fcs = nn.ModuleList(Linear(a, b, gens, device, cfg.init) for a, b in pairwise(sizes))
        self.norms = (
            nn.ModuleList(Norm(cfg.norm, self.n_members, h, device) for h in cfg.hidden) if cfg.norm != "none" else None
        )
        self.head = Linear(sizes[-1], n_classes, gens, device, cfg.init)
        self.kwta = (
            nn.ModuleList(
                KWTA(k, h, self.n_members, cfg.kwta_boost, device) for k, h in zip(cfg.kwta, cfg.hidden, strict=True)
            )
            if cfg.kwta
            else None
        )
        # dropout: per-member probability and generator; a member with p = 0 draws nothing
        self.register_buffer("dropout", dropout.to(device).view(-1, 1, 1))
        self._drop_gens = seeding.generators(seeds, seeding.DROPOUT, device)
        self._drop_active = [float(p) > 0 for p in dropout]
        # Linear+ReLU layers only (no norm, k-WTA or dropout): a per-member batch goes through them as one
        # autograd node (_StackFn) unless the caller asks for every layer's output (``record``)
        self.stacked = cfg.norm == "none" and not cfg.kwta and not any(self._drop_active)
        self._init_extra(gens, device)

    def _init_extra(self, gens: list[torch.Generator], device) -> None:
        """Parameters of a subclass, drawn after the fully connected ones."""

    def linear_stack(self) -> list[Linear] | None:
        """The network's linear layers, input to head, when every parameter sits in them and each takes the
        previous layer's activation (the input first): no convolution in front, no norm between. What the
        hand-written training step, the probes' sparse first product and the closed-form per-example
        statistics (EWC's Fisher, MAS's importance) compute with; None for any other network (every consumer
        asks here). The activation may be ReLU or k-WTA, and dropout may be on: ``kwta`` and
        ``dropout_active`` say which."""
        if self.convolutional or self.norms is not None:
            return None
        return [*self.fcs, self.head]

    @property
    def dropout_active(self) -> bool:
        """Some member draws dropout masks in training."""
        return any(self._drop_active)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _dropout(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or not any(self._drop_active):
            return h
        keep = 1 - self.dropout
        masks = [
            torch.empty(h.shape[1:], device=h.device).bernoulli_(float(keep[e]), generator=g)
            if on
            else torch.ones(h.shape[1:], device=h.device)
            for e, (g, on) in enumerate(zip(self._drop_gens, self._drop_active, strict=True))
        ]
        return h * torch.stack(masks) / keep

    def forward(
        self, x: torch.Tensor | None, *, first: torch.Tensor | None = None, record: list | None = None
    ) -> Output:
        """x [E, B, in] (each member its own batch) or one shared batch [N, in] -> Output [E, B, C].

        ``first`` [E, N, H] replaces the first layer's product when the caller computed it another way (the
        probes' sparse product; x is then None). ``record``, a list, receives (input, output) of every
        linear layer in order, for per-example gradient statistics (EWC's Fisher): the gradient of a loss
        with respect to a layer's output, times its input, is that layer's per-example weight gradient.
        """
        if first is None and x is None:
            raise ValueError("EnsembleNet.forward needs x, or the first layer's product as first=")
        h = self.features(x) if x is not None and first is None else None
        if self.stacked and record is None and h is not None and h.dim() == 3:
            logits, *hidden = _StackFn.apply(h, *(t for fc in (*self.fcs, self.head) for t in (fc.weight, fc.bias)))
            return Output(logits, hidden)
        inplace = not torch.is_grad_enabled()  # no graph: each ReLU may overwrite its fresh product
        hidden = []
        for i, fc in enumerate(self.fcs):
            out = fc(h) if h is not None else cast(torch.Tensor, first)  # first: given when h is None
            if record is not None:
                record.append((h, out))
            h = out
            if self.norms is not None:
                h = self.norms[i](h if h.dim() == 3 else h.expand(self.n_members, *h.shape))
            h = self._dropout(F.relu(h, inplace=inplace) if self.kwta is None else self.kwta[i](h))
            hidden.append(h)
        logits = self.head(h)
        if record is not None:
            record.append((h, logits))
        return Output(logits, hidden)


@MODELS.register("mlp")
class MLP(EnsembleNet):
    """The study's MLP: 784-120-84-10 with ReLU (hidden sizes configurable)."""

    def __init__(self, cfg, seeds, dropout, n_classes=10, device="cpu", in_features=784):
        super().__init__(cfg, seeds, dropout, in_features, n_classes, device)


@MODELS.register("lenet5")
class LeNet5(EnsembleNet):
    """LeNet-5: conv(6, 5x5, pad 2) - pool - conv(16, 5x5) - pool - 400-120-84-10.

    The E members' convolutions run as one grouped convolution (groups = E), in channels-last layout.
    """

    convolutional = True

    def __init__(self, cfg, seeds, dropout, n_classes=10, device="cpu", in_features=784):
        if in_features != 784:
            raise ConfigError(
                f"model.arch=lenet5 takes 28x28 single-channel images, not {in_features} inputs; "
                f"bring your own network with model.module"
            )
        super().__init__(cfg, seeds, dropout, 16 * 5 * 5, n_classes, device)

    def _init_extra(self, gens, device) -> None:
        self.conv_w = nn.ParameterList()
        self.conv_b = nn.ParameterList()
        for cin, cout in ((1, 6), (6, 16)):
            bound = 1 / math.sqrt(cin * 25)
            self.conv_w.append(nn.Parameter(_uniform((cout, cin, 5, 5), bound, gens, device)))
            self.conv_b.append(nn.Parameter(_uniform((cout,), bound, gens, device)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        E = self.n_members
        if x.dim() == 2:  # shared batch: every member sees the same images
            h = x.view(-1, 1, 28, 28).expand(-1, E, 28, 28)
        else:  # [E, B, 784] -> [B, E, 28, 28]: member e's images are channel e
            h = x.view(E, -1, 28, 28).transpose(0, 1)
        # channels-last: oneDNN's grouped convolution, ~2x faster on the CPU than the default layout's
        # im2col path for groups > 1 (same maths; sums in another order, so equal to float rounding)
        h = h.contiguous(memory_format=torch.channels_last)
        for (w, b), pad in zip(zip(self.conv_w, self.conv_b, strict=True), (2, 0), strict=True):
            w = w.flatten(0, 1).contiguous(memory_format=torch.channels_last)
            h = F.max_pool2d(F.relu(F.conv2d(h, w, b.flatten(), padding=pad, groups=E)), 2)
        return h.reshape(h.shape[0], E, -1).transpose(0, 1)  # [E, B, 400]


def build(
    cfg: ModelConfig,
    seeds: list[int],
    dropout: torch.Tensor,
    device,
    n_classes: int = 10,
    input_shape: tuple[int, ...] = (1, 28, 28),
) -> EnsembleNet:
    """A built-in network; the MLP flattens images of any shape, LeNet-5 takes 1x28x28."""
    in_features = math.prod(input_shape)
    return MODELS[cfg.arch](cfg, seeds, dropout, n_classes=n_classes, device=device, in_features=in_features)

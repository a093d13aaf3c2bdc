"""Batched layers against PyTorch's own modules, member by member."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from forgetlab.config import ModelConfig
from forgetlab.engine.models import Norm, build, eval_mode
from forgetlab.engine.steps import FusedMLPStep, L1Penalty


def _member_mlp(net, e: int, x: torch.Tensor) -> torch.Tensor:
    """A slow reference: member e's weights in plain nn.Linear layers."""
    h = x
    for fc in net.fcs:
        lin = nn.Linear(*fc.weight.shape[1:])
        lin.weight.data, lin.bias.data = fc.weight[e].T.clone(), fc.bias[e, 0].clone()
        h = F.relu(lin(h))
    return h @ net.head.weight[e] + net.head.bias[e]


def test_mlp_members_match_plain_linear_layers():
    net = build(ModelConfig(), [0, 1, 2], torch.zeros(3), "cpu")
    x = torch.randn(3, 16, 784)
    out = net(x)
    assert out.logits.shape == (3, 16, 10) and [h.shape[-1] for h in out.hidden] == [120, 84]
    for e in range(3):
        torch.testing.assert_close(out.logits[e], _member_mlp(net, e, x[e]), rtol=1e-5, atol=1e-5)
    shared = net(x[0])  # one batch for everyone gives each member's own answer on it
    torch.testing.assert_close(shared.logits[1], _member_mlp(net, 1, x[0]), rtol=1e-5, atol=1e-5)


def test_init_is_per_seed_and_independent_of_the_ensemble():
    a = build(ModelConfig(), [7], torch.zeros(1), "cpu")
    b = build(ModelConfig(), [3, 7], torch.zeros(2), "cpu")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa[0], pb[1])
        assert not torch.equal(pb[0], pb[1])
    bound = 1 / 784**0.5  # nn.Linear's default: uniform in +-1/sqrt(fan_in)
    w = b.fcs[0].weight
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound


def test_batch_norm_matches_nn_batchnorm1d_per_member():
    torch.manual_seed(0)
    norm = Norm("batch", 2, 5, "cpu")
    refs = [nn.BatchNorm1d(5) for _ in range(2)]
    for step in range(3):
        h = torch.randn(2, 8, 5) * 3 + step
        out = norm(h)
        for e in range(2):
            torch.testing.assert_close(out[e], refs[e](h[e]))
    for e in range(2):
        torch.testing.assert_close(norm.running_mean[e], refs[e].running_mean)
        torch.testing.assert_close(norm.running_var[e], refs[e].running_var)
    norm.eval()
    h = torch.randn(2, 4, 5)
    for e in range(2):
        refs[e].eval()
        torch.testing.assert_close(norm(h)[e], refs[e](h[e]))


def test_layer_norm_matches_nn_layernorm():
    norm = Norm("layer", 2, 6, "cpu")
    h = torch.randn(2, 4, 6)
    torch.testing.assert_close(norm(h)[1], nn.LayerNorm(6)(h[1]))


def test_lenet_grouped_convolution_equals_each_member_alone():
    cfg = ModelConfig(arch="lenet5")
    net = build(cfg, [0, 1], torch.zeros(2), "cpu")
    x = torch.randn(2, 5, 784)
    out = net(x)
    for e in range(2):
        alone = build(cfg, [e], torch.zeros(1), "cpu")
        torch.testing.assert_close(alone(x[e : e + 1]).logits[0], out.logits[e], rtol=1e-5, atol=1e-5)
    # by hand for member 1: conv(pad 2) - relu - pool - conv - relu - pool - 400-120-84-10
    w0, b0 = net.conv_w[0][1], net.conv_b[0][1]
    w1, b1 = net.conv_w[1][1], net.conv_b[1][1]
    h = F.max_pool2d(F.relu(F.conv2d(x[1].view(5, 1, 28, 28), w0, b0, padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, w1, b1)), 2).flatten(1)
    for fc in net.fcs:
        h = F.relu(h @ fc.weight[1] + fc.bias[1])
    torch.testing.assert_close(out.logits[1], h @ net.head.weight[1] + net.head.bias[1], rtol=1e-5, atol=1e-5)


def test_dropout_masks_are_per_member_and_scaled():
    net = build(ModelConfig(dropout=0.5), [0, 1], torch.tensor([0.5, 0.0]), "cpu")
    net.train()
    out = net(torch.randn(2, 64, 784))
    h1 = out.hidden[0]
    net.eval()
    assert (h1[1] == 0).float().mean() < 0.75  # p = 0: only ReLU zeros
    zero_frac = (h1[0] == 0).float().mean()
    assert zero_frac > (h1[1] == 0).float().mean() + 0.2
    alone = build(ModelConfig(dropout=0.5), [0], torch.tensor([0.5]), "cpu")
    alone.train()
    x = torch.randn(2, 64, 784)
    net.train()
    torch.testing.assert_close(
        build(ModelConfig(dropout=0.5), [0, 1], torch.tensor([0.5, 0.0]), "cpu").train()(x).logits[0],
        alone(x[:1]).logits[0],
        rtol=1e-5,
        atol=1e-5,
    )


def test_lenet_gradients_equal_plain_convolutions_per_member():
    """The channels-last grouped convolution gives each member the gradients of its own plain convolution."""
    cfg = ModelConfig(arch="lenet5")
    net = build(cfg, [3, 4], torch.zeros(2), "cpu")
    x = torch.randn(2, 6, 784)
    net(x).logits.square().sum().backward()
    e = 1
    w0, b0, w1, b1 = (
        t[e].detach().clone().requires_grad_() for t in (net.conv_w[0], net.conv_b[0], net.conv_w[1], net.conv_b[1])
    )
    h = F.max_pool2d(F.relu(F.conv2d(x[e].view(6, 1, 28, 28), w0, b0, padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, w1, b1)), 2).flatten(1)
    for fc in net.fcs:
        h = F.relu(h @ fc.weight[e] + fc.bias[e])
    (h @ net.head.weight[e] + net.head.bias[e]).square().sum().backward()
    for mine, ref in (
        (net.conv_w[0].grad[e], w0.grad),
        (net.conv_b[0].grad[e], b0.grad),
        (net.conv_w[1].grad[e], w1.grad),
        (net.conv_b[1].grad[e], b1.grad),
    ):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [16, 13])
def test_fused_step_gives_the_autograd_loss_and_gradients(batch):
    """FusedMLPStep (no autograd) against autograd through the cross-entropy and the L1 term, per member."""
    x = torch.randn(3, batch, 784)
    y = torch.randint(0, 10, (3, batch))
    l1 = torch.tensor([0.0, 0.3, 2.0])
    net = build(ModelConfig(), [0, 1, 2], torch.zeros(3), "cpu")
    assert FusedMLPStep.fits(net)
    out = net(x)
    ce = F.cross_entropy(out.logits.flatten(0, 1), y.flatten(), reduction="none").view(3, -1).mean(1)
    ref = ce + l1 * sum(h.abs().mean((1, 2)) for h in out.hidden)
    ref.sum().backward()
    ref_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    loss, logits, target = FusedMLPStep(net, L1Penalty(l1))(x, y)
    assert target is y
    torch.testing.assert_close(logits, out.logits, rtol=1e-6, atol=1e-6)  # the head's product transposed
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-6, atol=1e-7)
    for mine, theirs in zip((p.grad for p in net.parameters()), ref_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)


def test_l1_penalty_gradient_is_the_autograd_one():
    h = torch.relu(torch.randn(2, 5, 7, requires_grad=True))
    lam = torch.tensor([0.5, 3.0])
    pen = L1Penalty(lam)
    h.retain_grad()
    pen.add_to(torch.zeros(2), [h]).sum().backward()
    torch.testing.assert_close(pen.grad(h.detach()) * (h > 0), h.grad, rtol=1e-6, atol=0)


def test_fused_step_only_fits_the_plain_mlp():
    assert not FusedMLPStep.fits(build(ModelConfig(norm="batch"), [0], torch.zeros(1), "cpu"))
    assert not FusedMLPStep.fits(build(ModelConfig(), [0, 1], torch.tensor([0.0, 0.5]), "cpu"))  # dropout
    assert not FusedMLPStep.fits(build(ModelConfig(arch="lenet5"), [0], torch.zeros(1), "cpu"))
    assert not FusedMLPStep.fits(build(ModelConfig(kwta=(20, 20)), [0], torch.zeros(1), "cpu"))


def test_eval_mode_restores_the_training_flag_even_on_error():
    net = build(ModelConfig(), [0], torch.zeros(1), "cpu")
    for flag in (True, False):
        net.train(flag)
        with pytest.raises(RuntimeError):
            with eval_mode(net):
                assert not net.training
                raise RuntimeError
        assert net.training is flag


def _loss_and_grads(net, x, y, l1, **kw):
    """Per-member mean cross-entropy + l1 * mean |h| summed over members; (loss, every parameter's and x's
    gradient)."""
    out = net(x, **kw)
    loss = F.cross_entropy(out.logits.transpose(1, 2), y, reduction="none").mean(1)
    loss = (loss + l1 * sum(h.abs().mean((1, 2)) for h in out.hidden)).sum()
    return loss, torch.autograd.grad(loss, [*net.parameters(), x])


@pytest.mark.parametrize("arch", ["mlp", "lenet5"])
def test_stack_node_gives_the_per_layer_numbers_exactly(arch):
    """The plain stack's one autograd node against the per-layer path (``record`` asks for it): the same
    operations, so the same loss and gradients to the last bit, the input's gradient included (LeNet's
    convolutions and an L1 term on the activations need it)."""
    net = build(ModelConfig(arch=arch), [0, 1], torch.zeros(2), "cpu")
    assert net.stacked
    x = torch.randn(2, 9, 784, requires_grad=True)
    y = torch.randint(0, 10, (2, 9))
    l1 = torch.tensor([0.0, 0.5])
    loss, grads = _loss_and_grads(net, x, y, l1)
    ref_loss, ref_grads = _loss_and_grads(net, x, y, l1, record=[])
    assert torch.equal(loss, ref_loss)
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads, strict=True))


def test_stack_node_gradients_equal_plain_linear_layers_per_member():
    net = build(ModelConfig(), [0, 1], torch.zeros(2), "cpu")
    x = torch.randn(2, 7, 784, requires_grad=True)
    y = torch.randint(0, 10, (2, 7))
    _, grads = _loss_and_grads(net, x, y, torch.tensor([0.3, 1.0]))
    for e, lam in enumerate((0.3, 1.0)):  # slow reference: member e alone, ordinary tensors and autograd
        params = [p[e].detach().clone().requires_grad_() for p in net.parameters()]
        xe = x[e].detach().clone().requires_grad_()
        h, hidden = xe, []
        for w, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
            h = torch.relu(h @ w + b)
            hidden.append(h)
        loss = F.cross_entropy(h @ params[-2] + params[-1], y[e]) + lam * sum(h.abs().mean() for h in hidden)
        ref = torch.autograd.grad(loss, [*params, xe])
        for g, r in zip(grads, ref, strict=True):
            torch.testing.assert_close(g[e], r, rtol=1e-5, atol=1e-7)


def test_stack_node_under_torch_func_gives_per_example_gradients():
    """vmap(grad(.)) over examples through the stack node (EWC's per-example Fisher transforms the model
    so) against one autograd call per example."""
    net = build(ModelConfig(), [0, 1], torch.zeros(2), "cpu")
    theta = {n: p.detach() for n, p in net.named_parameters()}
    x, y = torch.randn(5, 784), torch.randint(0, 10, (5,))

    def loss_one(theta, x, y):
        logits = torch.func.functional_call(net, theta, (x.view(1, 1, -1).expand(2, 1, -1),)).logits
        return F.cross_entropy(logits.flatten(0, 1), y.expand(2), reduction="sum")

    per_example = torch.func.vmap(torch.func.grad(loss_one), in_dims=(None, 0, 0))(theta, x, y)
    for i in range(5):
        ref = torch.autograd.grad(loss_one(dict(net.named_parameters()), x[i], y[i]), list(net.parameters()))
        for n, r in zip(theta, ref, strict=True):
            torch.testing.assert_close(per_example[n][i], r, rtol=1e-5, atol=1e-7)

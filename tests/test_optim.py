"""Batched optimizers against torch.optim, member by member, with per-member hyperparameters."""

import pytest
import torch

from forgetlab.engine.optim import OPTIMIZERS


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_matches_torch_optim_per_member(name):
    torch.manual_seed(0)
    lr, mom, wd = torch.tensor([0.1, 0.01]), torch.tensor([0.9, 0.5]), torch.tensor([0.0, 0.01])
    p = torch.nn.Parameter(torch.randn(2, 3, 4))
    refs = [torch.nn.Parameter(p.data[e].clone()) for e in range(2)]
    opt = OPTIMIZERS[name]([p], lr, mom, wd)
    if name == "sgd":
        ref_opts = [
            torch.optim.SGD([refs[e]], lr=float(lr[e]), momentum=float(mom[e]), weight_decay=float(wd[e]))
            for e in range(2)
        ]
    else:
        ref_opts = [
            torch.optim.Adam([refs[e]], lr=float(lr[e]), betas=(float(mom[e]), 0.999), weight_decay=float(wd[e]))
            for e in range(2)
        ]
    for _ in range(5):
        g = torch.randn(2, 3, 4)
        p.grad = g.clone()
        opt.step()
        for e in range(2):
            refs[e].grad = g[e].clone()
            ref_opts[e].step()
    for e in range(2):
        torch.testing.assert_close(p.data[e], refs[e].data, rtol=1e-5, atol=1e-5)

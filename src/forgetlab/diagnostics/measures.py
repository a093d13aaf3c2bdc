"""The maths behind the explanatory probes, batched over the member axis E: pure tensor functions.

- ``ridge_fit``: closed-form ridge least squares with an unpenalised intercept (scikit-learn's ``Ridge``);
- ``knn_predict``: k-nearest-neighbour majority vote in Euclidean distance;
- ``linear_cka``: linear centred kernel alignment (Kornblith et al. 2019, "Similarity of neural network
  representations revisited", eq. for the linear kernel in feature space).

Everything runs in float64: the Gram matrices of ReLU features (many dead units) are badly conditioned
in float32, and these run once per task on at most a few thousand examples.
"""

from __future__ import annotations

import torch


def ridge_fit(x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression of targets y [N, C] (shared) on features x [E, N, H] -> (W [E, H, C], b [E, 1, C]).

    Minimises ||y - x W - b||^2 + alpha ||W||^2 per member: x and y are centred, so the intercept is not
    penalised, then (xc'xc + alpha I) W = xc'yc is solved by Cholesky.
    """
    x, y = x.double(), y.double()
    x_mean, y_mean = x.mean(1, keepdim=True), y.mean(0, keepdim=True)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.transpose(1, 2) @ xc
    gram.diagonal(dim1=1, dim2=2).add_(alpha)
    w = torch.cholesky_solve(xc.transpose(1, 2) @ yc, torch.linalg.cholesky(gram))
    return w, y_mean - x_mean @ w


def knn_predict(
    train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, k: int, n_labels: int, chunk: int = 1024
) -> torch.Tensor:
    """Majority vote of the k nearest training examples (Euclidean), per member.

    train [E, N, H] with labels [N] in 0..n_labels-1 (shared), test [E, M, H] -> predicted labels [E, M].
    A tie in the vote goes to the smallest label (as scikit-learn's ``KNeighborsClassifier``).
    """
    train, test = train.double(), test.double()
    k = min(k, train.shape[1])
    sq_train = (train * train).sum(-1).unsqueeze(1)  # [E, 1, N]
    out = []
    for start in range(0, test.shape[1], chunk):  # bounds the [E, chunk, N] distance matrix
        t = test[:, start : start + chunk]
        dist = (t * t).sum(-1, keepdim=True) + sq_train - 2 * t @ train.transpose(1, 2)
        nearest = dist.topk(k, -1, largest=False).indices  # [E, m, k]
        votes = torch.zeros(*nearest.shape[:2], n_labels, dtype=torch.int64, device=train.device)
        votes.scatter_add_(-1, labels[nearest], torch.ones_like(nearest))
        out.append(votes.argmax(-1))  # the first maximum: the smallest label among tied ones
    return torch.cat(out, 1)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA between two representations of the same N examples: x [E, N, H1], y [E, N, H2] -> [E].

    ||yc' xc||_F^2 / (||xc' xc||_F ||yc' yc||_F) with column-centred xc, yc: 1 for representations equal
    up to rotation and isotropic scaling, NaN where one of them is constant (a dead layer).
    """
    xc = x.double() - x.double().mean(1, keepdim=True)
    yc = y.double() - y.double().mean(1, keepdim=True)
    cross = torch.linalg.matrix_norm(yc.transpose(1, 2) @ xc) ** 2
    nx = torch.linalg.matrix_norm(xc.transpose(1, 2) @ xc)
    ny = torch.linalg.matrix_norm(yc.transpose(1, 2) @ yc)
    return cross / (nx * ny)

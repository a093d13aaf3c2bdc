"""Wall time of naive fine-tuning on Split-MNIST under protocol (b) (MLP 2x100, SGD lr 0.03, batch 10,
one epoch per task, evaluation on the test set after each task): Avalanche's Naive strategy against
forgetlab, one after the other in the same environment.

    OMP_NUM_THREADS=1 python benchmarks/avalanche_naive_timing.py /work/shared/data   # needs avalanche-lib
"""
import sys
import time

import torch

root = sys.argv[1]
torch.manual_seed(0)

from avalanche.benchmarks.classic import SplitMNIST  # noqa: E402
from avalanche.models import SimpleMLP  # noqa: E402
from avalanche.training.plugins import EvaluationPlugin  # noqa: E402
from avalanche.evaluation.metrics import accuracy_metrics  # noqa: E402
from avalanche.training.supervised import Naive  # noqa: E402

bench = SplitMNIST(n_experiences=5, seed=0, fixed_class_order=list(range(10)), dataset_root=root)
model = SimpleMLP(num_classes=10, input_size=784, hidden_size=100, hidden_layers=2, drop_rate=0.0)
strategy = Naive(model, torch.optim.SGD(model.parameters(), lr=0.03), torch.nn.CrossEntropyLoss(),
                 train_mb_size=10, train_epochs=1, eval_mb_size=1000, device="cpu",
                 evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]))
t0 = time.perf_counter()
for exp in bench.train_stream:
    strategy.train(exp)
    res = strategy.eval(bench.test_stream)
t_avl = time.perf_counter() - t0
acc = [v for k, v in res.items() if k.startswith("Top1_Acc_Stream")][0]
print(f"avalanche Naive, 1 seed: {t_avl:.1f} s, final accuracy {acc:.4f}")

from forgetlab import api  # noqa: E402

for seeds in ([0], [0, 1, 2, 3, 4]):
    t0 = time.perf_counter()
    res = api.run(api.presets.get("buzzega2020-seq-mnist-200", "naive"), seeds=seeds, data_dir=root,
                  device="cpu", save=False, progress=False)
    t = time.perf_counter() - t0
    acc = sum(m.tasks[-1].val_acc[-1] for m in res.members) / len(res.members)
    print(f"forgetlab naive, {len(seeds)} seed(s) batched: {t:.1f} s, final accuracy {acc:.4f}")

"""The study's numbers, typed in from ../shared/study/mnist-mlp-forgetting-study.md (one run each).

Every value is the study's last printed epoch ("Epoch 4" / "4, ..." = the fifth epoch, counting from 0)
of each task. Keys: train_loss, train_acc, val_loss, val_acc, sparsity (population sparsity, when
printed). Sections and their order follow the study; ``section`` is its heading.
"""

from __future__ import annotations

SOURCE = "shared/study/mnist-mlp-forgetting-study.md"


def _seq(rows, with_sparsity=False):
    """Sequential blocks are printed as: train loss, train acc, val loss, val acc[, sparsity]."""
    keys = ("train_loss", "train_acc", "val_loss", "val_acc", "sparsity")[: 5 if with_sparsity else 4]
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _conc(train_loss, val_loss, train_acc, val_acc, sparsity=None):
    """Concurrent blocks are printed as: train loss, val loss, train acc, val acc (then sparsity)."""
    d = dict(train_loss=train_loss, val_loss=val_loss, train_acc=train_acc, val_acc=val_acc)
    if sparsity is not None:
        d["sparsity"] = sparsity
    return [d]


# preset -> {member-group label ("" when the preset has no grid) -> per task: {metric: value}}
STUDY: dict[str, dict[str, list[dict]]] = {
    # "MNIST MLP Training / Concurrent Training"
    "mlp-concurrent": {"": _conc(0.0117, 0.0357, 0.9786, 0.9646)},
    # "Sequential Training", tasks [1,2] [3,4] [5,6] [7,8] [9,0]
    "mlp-sequential": {
        "": _seq(
            [
                (0.010796, 0.996891, 0.008445, 0.996167),
                (0.003716, 0.999099, 11.001564, 0.485862),
                (0.019041, 0.993537, 10.511510, 0.314396),
                (0.011244, 0.996527, 11.454843, 0.252061),
                (0.007458, 0.997570, 12.196303, 0.198500),
            ]
        )
    },
    # "Concurent training with batch norm"
    "mlp-bn-concurrent": {"": _conc(0.0944, 0.0522, 0.9819, 0.9782)},
    # "Sequential training with batch norm"
    "mlp-bn-sequential": {
        "": _seq(
            [
                (0.007517, 0.998210, 0.007921, 0.997604),
                (0.007366, 0.998099, 3.824531, 0.485862),
                (0.013730, 0.995444, 5.355310, 0.316407),
                (0.008876, 0.997718, 5.718965, 0.253310),
                (0.010084, 0.997267, 5.813504, 0.198700),
            ]
        )
    },
    # "Changing batch norm to layer norm ... did not include these experiments": no numbers
    "mlp-ln-sequential": {},
    # "Sequential training with dropout" (p = 0.5)
    "mlp-dropout-sequential": {
        "": _seq(
            [
                (0.022379, 0.994629, 0.012148, 0.995688),
                (0.037854, 0.985290, 8.545651, 0.484387),
                (0.224478, 0.879754, 11.920597, 0.312385),
                (0.549324, 0.739407, 5.314554, 0.250812),
                (0.235963, 0.942195, 25.727476, 0.196800),
            ]
        )
    },
    # "Trying to increase sparsity / Concurrent training" (its loop is `range(1, epochs)`)
    "mlp-l1-concurrent": {
        "l1=0": _conc(0.0007, 0.0159, 0.9792, 0.9719, 0.5437),
        "l1=0.001": _conc(0.0240, 0.0263, 0.9793, 0.9751, 0.5667),
        "l1=0.1": _conc(0.1424, 0.0560, 0.9815, 0.9725, 0.8307),
        "l1=1": _conc(0.5234, 0.2253, 0.9533, 0.9494, 0.9241),
        "l1=2": _conc(0.8515, 0.3602, 0.9108, 0.9063, 0.9326),
    },
    # "Trying to increase sparsity / Sequential training"
    "mlp-l1-sequential": {
        "l1=0": _seq(
            [
                (0.007918, 0.997644, 0.012917, 0.995688, 0.4987),
                (0.006190, 0.998199, 11.244117, 0.485124, 0.7782),
                (0.020671, 0.993432, 10.351263, 0.314899, 0.8593),
                (0.013371, 0.995832, 13.886833, 0.251561, 0.8637),
                (0.010451, 0.996862, 9.311324, 0.19850, 0.90260),
            ],
            with_sparsity=True,
        ),
        "l1=1": _seq(
            [
                (0.126483, 0.997927, 0.023806, 0.996646, 0.9440),
                (0.115641, 0.998299, 3.586066, 0.484878, 0.9353),
                (0.210337, 0.982519, 4.093104, 0.313055, 0.9565),
                (0.144630, 0.996130, 4.783073, 0.253185, 0.9720),
                (0.145485, 0.997570, 4.684452, 0.199900, 0.9657),
            ],
            with_sparsity=True,
        ),
    },
}

# The latent-space subsection of the L1 experiment repeats lambda 0 and 1 once more: population sparsity
LATENT_REPEAT = {"mlp-l1-concurrent": {"l1=0": 0.5369, "l1=1": 0.9236}}

# Section headings of the study, in order, and the presets each one reports.
SECTIONS: list[tuple[str, str, str]] = [
    # (level-1 heading, level-2/3 heading, preset)
    ("MNIST MLP Training", "Concurrent Training", "mlp-concurrent"),
    ("MNIST MLP Training", "Sequential Training", "mlp-sequential"),
    ("MNIST MLP Training", "Concurrent training with batch norm", "mlp-bn-concurrent"),
    ("MNIST MLP Training", "Sequential training with batch norm", "mlp-bn-sequential"),
    ("MNIST MLP Training", "Sequential training with layer norm", "mlp-ln-sequential"),
    ("MNIST MLP Training", "Sequential training with dropout", "mlp-dropout-sequential"),
    ("Trying to increase sparsity", "Concurrent training", "mlp-l1-concurrent"),
    ("Trying to increase sparsity", "Sequential training", "mlp-l1-sequential"),
]

STUDY_TEXT = {
    "mlp-concurrent": "Upper bound: val acc 0.9646; the latent space is well separated.",
    "mlp-sequential": "Abrupt forgetting at each new task (the old classes collapse between batches 3 and 11); "
    "nothing special in the relative updates at that point, only larger updates early in a task. "
    "Lower bound: val acc 0.1985.",
    "mlp-bn-concurrent": "Batch norm: val acc 0.9782.",
    "mlp-bn-sequential": "Batch norm does not reduce forgetting; curves are smoother and the last layers are "
    "updated a little more strongly; some probability is left on old classes.",
    "mlp-ln-sequential": "Layer norm: 'no new insight', no numbers in the study (run here for completeness).",
    "mlp-dropout-sequential": "Dropout 0.5 does not help; elongated shapes in the t-SNE latent space.",
    "mlp-l1-concurrent": "An L1 penalty on hidden activations raises population sparsity from 0.54 to 0.93 "
    "as lambda goes from 0 to 2, at some cost in accuracy.",
    "mlp-l1-sequential": "Without L1, sparsity grows task after task (0.50 -> 0.90); with lambda 1 it is high "
    "from the start (0.94-0.97), and forgetting is unchanged.",
    # LeNet-5 is only named in the text, as the conv net of an earlier part of the study; no numbers
    "lenet-concurrent": "No LeNet-5 numbers; the MLP's concurrent latent space is 'not as good, but close to the "
    "latent space using LeNet5'.",
    "lenet-sequential": "No LeNet-5 numbers; the MLP forgets with 'the same behavior we saw using the conv net': "
    "very abruptly, then it learns the new task.",
}

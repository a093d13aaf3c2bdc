"""The report end to end on a tiny synthetic configuration (no MNIST): tables, figures, HTML, cache."""

from __future__ import annotations

import re

import pytest

from forgetlab import api
from forgetlab import diagnostics as probes
from forgetlab.cli import main
from forgetlab.data import sources as data_sources
from forgetlab.diagnostics import figures
from forgetlab.outputs.results import load as load_results
from forgetlab.studies.mnist_mlp import SECTIONS, STUDY
from forgetlab.workflows import reproduce as report
from test_probes import synthetic

PRESETS = ["mlp-sequential", "mlp-l1-sequential", "mlp-l1-concurrent"]
PC = probes.ProbeConfig(per_class=8, first=5, every=5, latent_per_class=10)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    data = synthetic(n_train=20, n_eval=10)
    mp = pytest.MonkeyPatch()
    mp.setattr(data_sources, "load_data", lambda config, device: data)
    lines = []
    report.reproduce(seeds=[0, 1], out=out, epochs=1, presets=PRESETS, probe_config=PC, log=lines.append)
    again = []
    report.reproduce(seeds=[0, 1], out=out, epochs=1, presets=PRESETS, probe_config=PC, log=again.append)
    mp.undo()
    return out, lines, again


def test_report_has_the_study_sections_in_order_and_every_table(built):
    out, _, _ = built
    md = (out / "REPORT.md").read_text()
    heads = [f"{sub} (`{name}`)" for _, sub, name in SECTIONS if name in PRESETS]
    pos = [md.index(h) for h in heads]
    assert pos == sorted(pos)
    assert md.index("## MNIST MLP Training") < md.index("## Trying to increase sparsity")
    # the study's numbers sit beside ours: e.g. its lower bound and its L1 lambda-2 sparsity
    assert "0.1985" in md and "0.9326" in md
    assert "half-drop batch" in md and ("nothing special" in md or "stands out" in md)
    for phase in ("training", "probes", "tsne", "figures", "report"):
        assert re.search(rf"\| {phase} \| \d+\.\d \|", md)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(images) >= 6
    for rel in images:
        assert (out / rel).exists() and (out / rel).with_suffix(".pdf").exists()
    kinds = " ".join(images)
    for kind in (
        "forgetting_curve",
        "forgetting_onset",
        "relative_updates",
        "probs_curve",
        "probs_matrix",
        "latent",
        "sparsity_vs_lambda",
        "sparsity_vs_task",
    ):
        assert kind in kinds


def test_report_html_is_self_contained(built):
    out, _, _ = built
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "url(" not in page
    srcs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert page.count("<table>") >= 4


def test_second_run_is_served_from_the_cache(built):
    _, lines, again = built
    assert any("trained" in line for line in lines)
    assert any("reused" in line for line in lines)  # mlp-sequential = the lambda-0 members of mlp-l1-sequential
    assert sum("cached" in line for line in again) == len(PRESETS)


def test_study_table_matches_the_study_text():
    text = (
        open("/work/shared/study/mnist-mlp-forgetting-study.md").read()
        if __import__("os").path.exists("/work/shared/study/mnist-mlp-forgetting-study.md")
        else None
    )
    if text is None:
        pytest.skip("study text not available")
    for preset, by_group in STUDY.items():
        for rows in by_group.values():
            for row in rows:
                for v in row.values():
                    assert str(v) in text, (preset, v)


def test_plot_redraws_a_run_without_training(tmp_path, monkeypatch):
    data = synthetic(n_train=20, n_eval=10)
    monkeypatch.setattr(data_sources, "load_data", lambda config, device: data)
    config = api.make_config(
        "mlp-sequential", seeds=[0, 1], epochs=1, set={"model.hidden": "16,8", "protocol.tasks": "[[0,1],[2,3]]"}
    )
    api.run(config, out=tmp_path / "run", probes=PC, progress=False)
    assert main(["plot", str(tmp_path / "run"), "--latent-tasks", "last"]) == 0
    pngs = sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png"))
    explained = [
        p
        for p in pngs
        if p.startswith("explain_mlp-sequential_")
        and p.split("_", 2)[2][:-4] in ("probe_vs_network", "head_bias", "interference", "unit_reuse", "drift")
    ]
    assert len(pngs) == 6 + 5 and len(explained) == 5  # the study's figures and one per explanatory probe
    assert all((tmp_path / "run" / "figures" / p).stat().st_size > 5000 for p in pngs)
    assert main(["plot", str(tmp_path / "nothing")]) == 2


def test_onset_finds_the_half_drop_batch():
    import numpy as np

    # two tasks, old accuracy 1.0 at the boundary, falls to 0.4 at batch 3
    tasks = [[0], [1]]
    steps = np.array([0, 1, 2, 3, 4])
    correct = np.zeros((5, 1, 10))
    correct[:, 0, 0] = [10, 9, 6, 4, 0]
    arrays = {
        "point_task": np.ones(5, int),
        "point_task_step": steps,
        "point_step": steps,
        "curve_correct": correct,
        "probe_count": np.full(10, 10),
    }
    pd = probes.ProbeData(arrays, {"tasks": tasks, "members": [{}]})
    assert figures.onset_batches(pd)[1].tolist() == [3.0]


def test_flags_name_the_l1_collapse_and_lenet_parameters():
    # lambda >= 2 in concurrent L1: the measured collapse (dead units), not "a property of the study's run"
    line = report.explain("val_acc", "mlp-l1-concurrent", 0, "l1=2")
    assert "dead" in line and "Adam" in line
    assert "dead" not in report.explain("val_acc", "mlp-l1-concurrent", 0, "l1=1")
    # LeNet-5's convolution parameters are layers of their own in the update figures and onset table
    names = ["fcs.0.weight", "fcs.0.bias", "head.weight", "head.bias", "conv_w.0", "conv_w.1", "conv_b.0", "conv_b.1"]
    assert [figures.param_layer(n) for n in names[4:]] == [
        ("conv1", "weight"),
        ("conv2", "weight"),
        ("conv1", "bias"),
        ("conv2", "bias"),
    ]
    assert figures._layer_order(names) == ["conv1", "conv2", "fc1", "head"]


def test_report_answers_the_study_questions_with_generated_findings(built):
    out, _, _ = built
    md = (out / "REPORT.md").read_text()
    part = md[md.index("## Why the network forgets") :]
    for heading in (
        "Features or head?",
        "Head bias",
        "Gradient interference at the onset",
        "Unit reuse",
        "Representation drift",
    ):
        assert f"### {heading}" in part
    assert part.count("**Finding:**") >= 5
    assert re.search(r"the linear probe on hidden \d is at \d\.\d\d ± \d\.\d\d", part)
    assert re.search(r"the old classes' accuracy (halves at batch|does not halve)", part) or "never halves" in part
    for kind in ("probe_vs_network", "head_bias", "interference", "unit_reuse", "drift"):
        assert (out / "figures" / f"explain_mlp-sequential_{kind}.png").exists()


def test_reproduce_keeps_its_runs_in_the_store_by_config_identity(built):
    """Each experiment's run directory is the one Store.run_dir names for its config's identity and the
    probe settings, complete there; the second reproduce found every one of them cached."""
    from forgetlab import config as cfg
    from forgetlab.outputs.store import Store

    out, _, again = built
    store = Store(out)
    for name in PRESETS:
        config = api.make_config(name, seeds=[0, 1], epochs=1)
        run_dir = store.run_dir(name, cfg.identity(config), PC)
        assert store.run_complete(run_dir)
        assert any(line == f"  {name}: cached ({run_dir})" for line in again)
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        store.run_dir(n, cfg.identity(api.make_config(n, seeds=[0, 1], epochs=1)), PC).name for n in PRESETS
    )


def test_figure_kinds_come_from_the_preset_declaration(built):
    """Each section draws the kinds its preset declares, for the groups it names: mlp-l1-sequential
    declares the onset figure for its l1=1 group only; mlp-sequential every sequential figure and a
    latent map over all tasks."""
    from forgetlab.config import presets

    out, _, _ = built
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "REPORT.md").read_text())
    l1seq = [p for p in images if "mlp-l1-sequential" in p]
    assert presets.PRESETS["mlp-l1-sequential"].figure_groups == ("l1=1",)
    assert sorted(p.split("/")[-1] for p in l1seq) == [
        "mlp-l1-sequential_l11_forgetting_onset.png",
        "mlp-l1-sequential_latent.png",
        "mlp-l1-sequential_sparsity_vs_task.png",
    ]
    seq = sorted(p.split("/")[-1] for p in images if p.split("/")[-1].startswith("mlp-sequential"))
    assert seq == sorted(
        f"mlp-sequential_{k}.png"
        for k in ("forgetting_curve", "forgetting_onset", "relative_updates", "probs_curve", "probs_matrix", "latent")
    )


def test_reproduce_set_trains_every_experiment_under_the_overrides_and_names_them(tmp_path, monkeypatch):
    data = synthetic(n_train=20, n_eval=10)
    monkeypatch.setattr(data_sources, "load_data", lambda config, device: data)
    kw = dict(seeds=[0], epochs=1, presets=["mlp-sequential"], probe_config=PC, log=lambda s: None)
    report.reproduce(out=tmp_path, **kw)
    overrides = ["train.optimizer=adam", "train.lr=0.001"]
    lines = []
    report.reproduce(out=tmp_path, set=overrides, **dict(kw, log=lines.append))
    assert any("training 1 of 1" in s for s in lines)  # other settings: not the cached default run
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2
    res = [load_results(p) for p in (tmp_path / "runs").iterdir()]
    assert sorted(r.config.train.optimizer for r in res) == ["adam", "sgd"]
    md = (tmp_path / "REPORT.md").read_text()
    assert "instead of forgetlab's defaults: `train.optimizer=adam`, `train.lr=0.001`." in md


def test_reproduce_set_with_an_unknown_key_is_one_line_and_writes_nothing(tmp_path, capsys):
    code = main(["reproduce", "--out", str(tmp_path / "r"), "--set", "train.optimiser=adam"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.optimiser" in err[0]
    assert not (tmp_path / "r").exists()

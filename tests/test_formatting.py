"""The single homes of small app-side concepts: the mean ± sd formatter (one seed, NaN seeds), point labels,
figure saving."""

from __future__ import annotations

import math
import statistics

import pytest

from forgetlab.outputs import formatting, plotting


def test_mean_sd_formatter_on_a_hand_case():
    # 0.9, 0.8, 0.7: mean 0.8, sample sd sqrt(((0.1)^2 + 0 + (0.1)^2) / 2) = 0.1
    assert formatting.mean_sd([0.9, 0.8, 0.7]) == pytest.approx((0.8, 0.1))
    assert formatting.pm_of([0.9, 0.8, 0.7]) == "0.8000 ± 0.1000"
    assert formatting.pm_of([0.9, math.nan, 0.7]) == f"0.8000 ± {statistics.stdev([0.9, 0.7]):.4f}"
    assert formatting.pm(13.886833, 0.5) == "13.89 ± 0.5000"  # from 10 up: 2 decimals


def test_one_seed_prints_no_spread_and_a_nan_seed_is_left_out_and_counted_out():
    assert formatting.pm_of([0.25]) == "0.2500" and formatting.pm_of([0.25], 2) == "0.25"  # not "± 0.0000"
    assert math.isnan(formatting.mean_sd([0.25])[1])
    assert formatting.pm_of([]) == "–" and formatting.pm_of([math.nan, math.nan], n=2) == "–"
    # losses [0.30, 0.32, NaN]: n = 2, mean 0.31, sd 0.0141, and the cell says so
    assert formatting.pm_of([0.30, 0.32, math.nan], n=3) == "0.3100 ± 0.0141 (n = 2)"
    assert formatting.pm_of([0.30, 0.32, 0.31], n=3) == "0.3100 ± 0.0100"
    note = formatting.left_out([("seed 2", "val loss task 2"), ("seed 2", "train loss task 2"), ("seed 0", "x")])
    assert (
        note == "Not finite, left out (the seed diverged): seed 2 in val loss task 2, train loss task 2; seed 0 in x."
    )
    assert formatting.seeds_phrase(1) == "1 seed: no spread" and formatting.seeds_phrase(3) == "3 seeds, mean ± std"


def test_point_label():
    point = [("train.l1", 0.1), ("model.hidden", (256, 128))]
    assert formatting.point_label(point) == "l1=0.1 hidden=[256,128]"
    assert formatting.point_label(point, short=False) == "train.l1=0.1 model.hidden=[256,128]"
    assert formatting.point_label([], empty="(base)") == "(base)"


def _figure():
    plt = plotting.pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    return fig


def test_save_writes_png_and_pdf(tmp_path):
    png = plotting.save(_figure(), tmp_path / "sub" / "f")
    assert png == tmp_path / "sub" / "f.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "sub" / "f.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["f.pdf", "f.png"]  # no temporary left


def test_save_leaves_no_partial_file_when_writing_fails(tmp_path):
    fig = _figure()
    real = fig.savefig

    def fail_on_pdf(buf, format, **kw):
        if format == "pdf":
            buf.write(b"%PDF-half")
            raise OSError("disk full")
        return real(buf, format=format, **kw)

    fig.savefig = fail_on_pdf
    with pytest.raises(OSError):
        plotting.save(fig, tmp_path / "f")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]  # the PDF is absent, not half-written


def _results(train_loss: list[float]):
    """A one-task, one-epoch run of len(train_loss) seeds with those train losses."""
    from forgetlab import api
    from forgetlab.outputs.results import MemberResult, Results, TaskRecord

    config = api.make_config("mlp-sequential", seeds=list(range(len(train_loss))), set={"protocol.tasks": "[[0,1]]"})
    members = [
        MemberResult(seed, {}, [TaskRecord([0, 1], [v], [0.9], [0.2], [0.95 + 0.01 * seed], [[0.5, 0.5]], [0.5])])
        for seed, v in enumerate(train_loss)
    ]
    return Results(config, members)


def test_the_results_table_names_a_nan_seed_and_prints_no_spread_for_one_seed():
    lines = _results([0.30, 0.32, math.nan]).table().splitlines()
    assert lines[0].endswith("(3 seeds, mean ± std)")
    row = lines[2].split()
    assert row[3:7] == ["0.3100", "±", "0.0141*", "0.9000"]  # train loss of the 2 finite seeds, marked
    assert lines[3] == "* Not finite, left out (the seed diverged): seed 2 in train loss from task 1 epoch 1."
    one = _results([0.30]).table().splitlines()
    assert one[0].endswith("(1 seed: no spread)") and "±" not in one[2] and one[2].split()[3:5] == ["0.3000", "0.9000"]

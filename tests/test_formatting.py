"""The single homes of small app-side concepts: the mean ± sd formatter, point labels, figure saving."""

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
    assert formatting.pm_of([0.25]) == "0.2500 ± 0.0000"  # one seed: no spread
    assert formatting.pm_of([]) == "– ± –"
    assert formatting.pm(13.886833, 0.5) == "13.89 ± 0.5000"  # from 10 up: 2 decimals


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

"""examples/your_model.ipynb runs top to bottom (nbclient) on its small setting (about a minute; its speed
is not asserted here: timings belong to benchmarks)."""

import os
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.mnist


def test_the_notebook_runs_and_draws_its_figures(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FORGETLAB_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("FORGETLAB_DATA", str(mnist_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(ROOT / "examples" / "your_model.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "(1, 28, 28) 10 6000 500" in text
    acc = {line.split()[0]: float(line.split()[3]) for line in text.splitlines() if "average accuracy" in line}
    assert set(acc) == {"naive", "er"} and acc["er"] > acc["naive"] + 0.1  # replay remembers, naive forgets
    pngs = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(pngs) >= 10  # five figure types per strategy
    assert (tmp_path / "runs" / "your-model-er" / "results.json").exists()

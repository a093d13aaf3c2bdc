"""benchmarks/parity_avalanche.py reads the published figures from the stored Mammoth table."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _parity_module():
    spec = importlib.util.spec_from_file_location("parity_avalanche", ROOT / "benchmarks" / "parity_avalanche.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_published_reads_rows_with_and_without_a_buffer(tmp_path):
    # the layout of ../shared/references/buzzega2020-mammoth-table.md: a '-' buffer cell for methods without one
    table = tmp_path / "table.md"
    table.write_text(
        "# title\n\n"
        "| buffer | method | P-MNIST Domain-IL | S-MNIST Class-IL | S-MNIST Task-IL |\n"
        "|---|---|---|---|---|\n"
        "| - | SI | 65.86 | 19.27 | 96.00 |\n"
        "| - | LwF | - | 19.62 | 94.11 |\n"
        "| 500 | ER | 80.60 | 86.12 | 99.04 |\n"
    )
    parity = _parity_module()
    rows = parity.published(table)
    assert parity.published_figure(rows, "si", 500, "class-il") == "19.27"
    assert parity.published_figure(rows, "lwf", 500, "task-il") == "94.11"
    assert parity.published_figure(rows, "lwf", 500, "pmnist-domain-il") == "-"
    assert parity.published_figure(rows, "er", 500, "task-il") == "99.04"
    assert parity.published_figure(rows, "er", 200, "class-il") == "-"

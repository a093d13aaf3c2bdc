"""Every study preset and every strategy, short runs on real MNIST: the numbers and identities must equal,
to the last bit, those in engine_expected.json (written by engine_cases.py from the reference commit).

The numbers are pinned per CPU signature (vendor and torch's kernel instruction set). On a CPU that is
pinned they must be equal to the last bit. On another CPU the last bits of float sums differ, so the
cases whose pinned CPUs agree closely among themselves (``STABLE_ACROSS_CPUS``) are compared within
that agreement's scale, and every case's identities and status are still compared exactly."""

import json
from pathlib import Path

import numpy as np
import pytest

import engine_cases

PINNED = json.loads((Path(__file__).parent / "engine_expected.json").read_text())  # signature -> case -> numbers
SIGNATURE = engine_cases.cpu_signature()
# The van de Ven preset set strategy.memory_per_class=100 for every strategy; EWC and SI ignore it, and
# identities now hold only the named strategy's own settings, so these two (and only these) changed.
IDENTITY_CHANGED = {"vandeven-ewc", "vandeven-si"}


def _floats(members) -> np.ndarray:
    out = []

    def walk(o):
        if isinstance(o, dict):
            for k in sorted(o):
                walk(o[k])
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, (int, float)) and not isinstance(o, bool):
            out.append(float(o))

    walk(members)
    return np.asarray(out)


def _spread(name: str) -> float:
    """The largest difference between the pinned CPUs' numbers of one case."""
    refs = [_floats(cases[name]["members"]) for cases in PINNED.values()]
    return max(float(np.max(np.abs(r - refs[0]), initial=0.0)) for r in refs)


# cases whose numbers the pinned CPUs agree on to within 1e-4 (the others amplify a last-bit difference)
STABLE_ACROSS_CPUS = {name for name in engine_cases.CASES if _spread(name) < 1e-4}


def test_every_case_is_pinned():
    assert PINNED, "engine_expected.json pins no CPU"
    for signature, cases in PINNED.items():
        assert sorted(cases) == sorted(engine_cases.CASES), signature


@pytest.mark.parametrize("name", sorted(engine_cases.CASES))
def test_numbers_and_identities_equal_the_reference(name, mnist_dir):
    got = engine_cases.run_case(name, mnist_dir)
    want = PINNED.get(SIGNATURE, next(iter(PINNED.values())))[name]
    if name in IDENTITY_CHANGED:
        assert got["identity"] != want["identity"]
    else:
        assert got["identity"] == want["identity"]
        assert got["member_identities"] == want["member_identities"]
    assert got["status"] == want["status"] == "complete"
    if SIGNATURE in PINNED:
        # every epoch's losses, accuracies and sparsities; JSON's shortest repr round-trips a float exactly
        for g, w in zip(got["members"], want["members"], strict=True):
            assert json.dumps(g) == json.dumps(w)
    elif name in STABLE_ACROSS_CPUS:
        assert np.allclose(_floats(got["members"]), _floats(want["members"]), rtol=1e-3, atol=1e-3), (
            f"{name}: numbers differ from every pinned CPU's; pin this CPU ({SIGNATURE}) with engine_cases.py "
            f"from the reference commit"
        )

"""Raw IDX decoding and the decoded-tensor cache: values against a plain numpy decoding, fresh and stale caches."""

import os

import numpy as np
import pytest
import torch

from forgetlab import data
from forgetlab.data import builtin, sampling
from forgetlab.errors import DataError

MEAN, STD = 0.1307, 0.3081
N_TRAIN, N_TEST = 600, 100  # small files keep the tests fast; the real sizes are checked in test_mnist.py
FILES = {
    "train-images-idx3-ubyte": (N_TRAIN, 28, 28),
    "train-labels-idx1-ubyte": (N_TRAIN,),
    "t10k-images-idx3-ubyte": (N_TEST, 28, 28),
    "t10k-labels-idx1-ubyte": (N_TEST,),
}


@pytest.fixture(autouse=True)
def small_counts(monkeypatch):
    monkeypatch.setattr(builtin, "_COUNTS", {"train": N_TRAIN, "t10k": N_TEST})


def write_raw(root, seed=0):
    """Random MNIST-shaped IDX files under root/MNIST/raw; returns the raw folder."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, dims in FILES.items():
        values = rng.integers(0, 10 if len(dims) == 1 else 256, size=dims, dtype=np.uint8)
        header = bytes([0, 0, 8, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
        (raw / name).write_bytes(header + values.tobytes())
    return raw


def reference(raw, name, mean=MEAN, std=STD):
    """The slow, obvious decoding: skip the header, scale, normalise (float64, then rounded to float32)."""
    buf = (raw / name).read_bytes()
    ndim = buf[3]
    values = np.frombuffer(buf[4 + 4 * ndim :], dtype=np.uint8)
    if ndim == 1:
        return values.astype(np.int64)
    return ((values.reshape(-1, 784) / 255.0 - mean) / std).astype(np.float32)


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home / "forgetlab"


def test_decoded_values_match_a_plain_decoding_and_the_cache_is_written_beside_raw(tmp_path, cache_home):
    raw = write_raw(tmp_path / "d")
    ds = data.load("mnist", tmp_path / "d")
    np.testing.assert_allclose(ds.train.x.numpy(), reference(raw, "train-images-idx3-ubyte"), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ds.eval.y.numpy(), reference(raw, "t10k-labels-idx1-ubyte"))
    assert ds.train.x.shape == (N_TRAIN, 784) and ds.eval.x.shape == (N_TEST, 784)
    assert (raw.parent / "forgetlab-mnist-v1.pt").exists() and not cache_home.exists()


def test_a_fresh_cache_is_used_without_decoding(tmp_path, cache_home, monkeypatch):
    write_raw(tmp_path / "d")
    first = data.load("mnist", tmp_path / "d")

    def no_decode(*a):
        raise AssertionError("decoded although the cache is fresh")

    monkeypatch.setattr(builtin, "_decode", no_decode)
    again = data.load("mnist", tmp_path / "d", eval_split="holdout")
    held = sampling.stratified_holdout(first.train.y, 0.1)
    assert torch.equal(again.eval.x, first.train.x[held]) and torch.equal(again.train.y, first.train.y[~held])


def test_a_changed_raw_file_rebuilds_the_cache(tmp_path, cache_home):
    raw = write_raw(tmp_path / "d", seed=0)
    old = data.load("mnist", tmp_path / "d").train.x.clone()
    write_raw(tmp_path / "d", seed=1)  # same sizes, other bytes
    st = (raw / "train-images-idx3-ubyte").stat()
    os.utime(raw / "train-images-idx3-ubyte", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = data.load("mnist", tmp_path / "d").train.x
    assert not torch.equal(new, old)
    np.testing.assert_allclose(new.numpy(), reference(raw, "train-images-idx3-ubyte"), rtol=0, atol=1e-6)


def test_a_raw_file_replaced_with_the_same_size_and_mtime_rebuilds_the_cache(tmp_path, cache_home):
    """cp -p, rsync -a and tar x keep a file's mtime; MNIST and Fashion-MNIST files have equal sizes."""
    raw = write_raw(tmp_path / "d", seed=0)
    before = {f: (raw / f).stat() for f in FILES}
    old = data.load("mnist", tmp_path / "d")
    write_raw(tmp_path / "d", seed=1)  # other bytes, same sizes
    for f, st in before.items():
        os.utime(raw / f, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = {f: (raw / f).stat() for f in FILES}
    assert all((after[f].st_size, after[f].st_mtime_ns) == (before[f].st_size, before[f].st_mtime_ns) for f in FILES)
    new = data.load("mnist", tmp_path / "d")
    assert not torch.equal(new.train.x, old.train.x)
    np.testing.assert_allclose(new.train.x.numpy(), reference(raw, "train-images-idx3-ubyte"), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(new.eval.y.numpy(), reference(raw, "t10k-labels-idx1-ubyte"))


def test_other_normalisation_constants_or_version_rebuild_the_cache(tmp_path, cache_home, monkeypatch):
    from forgetlab.data import cache

    raw = write_raw(tmp_path / "d")
    data.load("mnist", tmp_path / "d")
    monkeypatch.setitem(builtin._DATASETS, "mnist", ("MNIST", "MNIST", 0.5, 0.25))
    x = data.load("mnist", tmp_path / "d").train.x
    np.testing.assert_allclose(x.numpy(), reference(raw, "train-images-idx3-ubyte", 0.5, 0.25), rtol=0, atol=1e-6)
    decoded, real_decode = [], builtin._decode
    monkeypatch.setattr(builtin, "_decode", lambda *a: decoded.append(a) or real_decode(*a))
    data.load("mnist", tmp_path / "d")
    assert decoded == []  # the same constants again: the cache written just now is fresh
    monkeypatch.setattr(cache, "__version__", "0.0.0-other")
    data.load("mnist", tmp_path / "d")
    assert len(decoded) == 1  # another forgetlab version: decoded again


def test_a_touched_but_equal_raw_file_keeps_the_cache(tmp_path, cache_home, monkeypatch):
    raw = write_raw(tmp_path / "d")
    data.load("mnist", tmp_path / "d")
    os.utime(raw / "t10k-labels-idx1-ubyte", ns=(1, 10**18))  # new mtime, same bytes: the checksum decides
    monkeypatch.setattr(builtin, "_decode", lambda *a: pytest.fail("decoded although only the mtime changed"))
    assert len(data.load("mnist", tmp_path / "d").eval) == N_TEST


def test_a_corrupt_cache_is_rebuilt(tmp_path, cache_home):
    raw = write_raw(tmp_path / "d")
    cache = raw.parent / "forgetlab-mnist-v1.pt"
    cache.write_bytes(b"not a torch file")
    ds = data.load("mnist", tmp_path / "d")
    np.testing.assert_array_equal(ds.train.y.numpy(), reference(raw, "train-labels-idx1-ubyte"))
    assert cache.stat().st_size > N_TRAIN * 784 * 4


def test_a_read_only_data_folder_caches_under_xdg_cache_home(tmp_path, cache_home):
    raw = write_raw(tmp_path / "d")
    for folder in (raw, raw.parent):
        folder.chmod(0o555)
    try:
        ds = data.load("mnist", tmp_path / "d")
    finally:
        for folder in (raw.parent, raw):
            folder.chmod(0o755)
    assert not (raw.parent / "forgetlab-mnist-v1.pt").exists()
    assert [p.name.split("-")[0] for p in cache_home.glob("*.pt")] == ["mnist"]
    np.testing.assert_array_equal(ds.eval.y.numpy(), reference(raw, "t10k-labels-idx1-ubyte"))


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda b: b[:-1], "corrupt or truncated"),
        (lambda b: b"", "0 bytes"),
        (lambda b: b"\x00\x00\x08\x02" + b[4:], "header"),
    ],
)
def test_damaged_raw_files_are_one_error_naming_the_file(tmp_path, cache_home, damage, fragment):
    raw = write_raw(tmp_path / "d")
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=fragment) as e:
        data.load("mnist", tmp_path / "d")
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not (raw.parent / "forgetlab-mnist-v1.pt").exists()


def test_a_label_out_of_range_is_an_error(tmp_path, cache_home):
    raw = write_raw(tmp_path / "d")
    path = raw / "train-labels-idx1-ubyte"
    buf = bytearray(path.read_bytes())
    buf[-1] = 12
    path.write_bytes(bytes(buf))
    with pytest.raises(DataError, match="label 12"):
        data.load("mnist", tmp_path / "d")


def test_run_imports_no_plotting_learning_or_cluster_library(tmp_path, mnist_dir):
    """`forgetlab run` loads torch and the engine only: no torchvision (its import pulls in torch._dynamo),
    matplotlib, scikit-learn, Ray or pandas."""
    import subprocess
    import sys

    code = (
        "import sys; from forgetlab import cli; "
        f"cli.main(['run', 'mlp-sequential', '--seeds', '0', '--epochs', '1', '--set', 'protocol.tasks=[[0,1]]', "
        f"'--data-dir', {str(mnist_dir)!r}, '--table', 'none', '--no-progress', '--out', {str(tmp_path / 'r')!r}]); "
        "print(sorted(m for m in ('torchvision', 'torch._dynamo', 'matplotlib', 'sklearn', 'ray', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "r" / "results.json").exists()

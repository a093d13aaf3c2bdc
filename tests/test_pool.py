"""The local executor: results in this process whatever the number of workers, largest jobs first,
errors as one line, a dead worker noticed, Ctrl-C stopping every worker."""

from __future__ import annotations

import os
import time

import pytest

from forgetlab.errors import ForgetlabError
from forgetlab.workflows.pool import Job, check_workers, default_workers, run_jobs


def square(x, progress=None):
    if progress is not None:
        progress(1, 2, f"squaring {x}")
    return x * x


def fail(x, progress=None):
    raise ForgetlabError(f"value {x} is bad")


def pid(x, progress=None):
    time.sleep(0.3)
    return os.getpid()


def die(x, progress=None):
    os._exit(7)


def collect(jobs, **kw):
    got = []
    run_jobs(jobs, lambda key, result: got.append((key, result)), **kw)
    return got


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_result_comes_back_to_the_caller(workers):
    jobs = [Job(f"j{x}", cost=x, fn=square, args=(x,)) for x in range(6)]
    got = collect(jobs, workers=workers)
    assert sorted(got) == [(f"j{x}", x * x) for x in range(6)]


def test_one_worker_runs_here_largest_first_with_progress():
    seen = []
    jobs = [Job(x, cost=c, fn=square, args=(x,)) for x, c in ((1, 5), (2, 50), (3, 0.5))]
    got = collect(jobs, workers=1, progress=lambda key, d, t, s: seen.append((key, s)))
    assert [k for k, _ in got] == [2, 1, 3]
    assert seen == [(2, "squaring 2"), (1, "squaring 1"), (3, "squaring 3")]


def test_two_workers_are_two_processes_and_forward_progress():
    seen = []
    got = collect([Job(x, 1, pid, (x,)) for x in range(4)], workers=2, progress=lambda *a: seen.append(a))
    pids = {r for _, r in got}
    assert len(pids) == 2 and os.getpid() not in pids
    got = collect([Job(x, 1, square, (x,)) for x in range(3)], workers=2, progress=lambda *a: seen.append(a))
    assert sorted(s for *_, s in seen) == ["squaring 0", "squaring 1", "squaring 2"]


def test_a_worker_error_is_one_forgetlab_error():
    with pytest.raises(ForgetlabError, match="value 3 is bad"):
        collect([Job(3, 1, fail, (3,)), Job(4, 1, square, (4,))], workers=2)


def test_a_dead_worker_is_noticed():
    with pytest.raises(ForgetlabError, match="worker process died \\(exit code 7\\)"):
        collect([Job(1, 1, die, (1,)), Job(2, 1, pid, (2,))], workers=2)


def test_workers_must_be_positive():
    assert check_workers(None) == default_workers() >= 1 and check_workers(3) == 3
    with pytest.raises(ForgetlabError, match="--workers 0 must be >= 1"):
        check_workers(0)


def test_program_cost_orders_programs_by_their_work():
    from forgetlab.config import presets
    from forgetlab.workflows.pool import program_cost

    seq = presets.get("mlp-sequential")
    assert program_cost(seq, 5) == 5 * program_cost(seq, 1)
    # 784*120 + 120*84 + 84*10 weights, 10 classes x 5 epochs
    assert program_cost(seq, 1) == (784 * 120 + 120 * 84 + 84 * 10) * 10 * 5
    assert program_cost(presets.get("lenet-sequential"), 1) > program_cost(seq, 1)
    assert program_cost(presets.get("mlp-l1-concurrent"), 25) > program_cost(presets.get("mlp-l1-sequential"), 10)
    # dropout and strategies leave the fused step: twice the work of the same run without them
    assert program_cost(presets.get("mlp-dropout-sequential"), 3) == 2 * program_cost(seq, 3)
    assert program_cost(presets.get("mlp-bn-sequential"), 3) == program_cost(seq, 3)


def slow(x, progress=None):
    for i in range(300):
        if progress is not None:
            progress(i, 300, "")
        time.sleep(0.1)
    return x


def test_ctrl_c_stops_every_worker_and_keeps_what_finished():
    got = []

    def progress(key, done, total, status):
        if key == "slow" and got:  # Ctrl-C arrives while the slow job runs, after the quick one finished
            raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_jobs(
            [Job("slow", 2, slow, (1,)), Job("quick", 1, square, (3,))],
            lambda k, r: got.append((k, r)),
            workers=2,
            progress=progress,
        )
    assert got == [("quick", 9)] and time.perf_counter() - t0 < 25  # the slow worker was stopped, not awaited


def test_training_uses_one_thread_by_default_and_restores_the_count(toy):
    import torch

    from forgetlab import api
    from forgetlab.engine.hooks import Hook

    seen = []

    class Threads(Hook):
        def after_task(self, ctx):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        api.run(
            "mlp-concurrent",
            dataset=toy,
            save=False,
            progress=False,
            seeds=[0],
            epochs=1,
            device="cpu",
            hooks=[Threads()],
        )
        api.run(
            "mlp-concurrent",
            dataset=toy,
            save=False,
            progress=False,
            seeds=[0],
            epochs=1,
            device="cpu",
            hooks=[Threads()],
            threads=2,
        )
        assert seen == [1, 2]
        assert torch.get_num_threads() == 2  # the caller's count, restored
    finally:
        torch.set_num_threads(before)

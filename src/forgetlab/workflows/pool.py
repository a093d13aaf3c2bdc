"""A pool of local worker processes: one per core, each with one torch thread, independent jobs largest first.

Every process trains with one torch thread unless told otherwise (``DEFAULT_THREADS``). Measured on the
2-core AMD EPYC (docs/speed.md): one seed of mlp-sequential trains as fast on one thread as on two, and
with one other process busy, two threads run LeNet-5 2.4x slower than one (they wait for each other at
every operation; a single thread just gets its share of the CPU); the last bits of the results also
depend on the thread count. Several cores are used through processes instead: two processes of one
thread each run at full speed where one process of two threads does not. A job is a module-level function and its
(picklable) arguments; the caller gets each result in this process, in the order jobs finish, so what
is stored on disk stays the caller's business. With one worker everything runs here, in this process.
A worker first imports every plug-in this process imported (``plugins.imported``): a job's arguments may
hold a plug-in's classes (a strategy's settings), which a fresh interpreter knows only after that import.

Ctrl-C stops every worker (they ignore SIGINT: this process decides) and raises KeyboardInterrupt
here once the finished results have been handed over. Workers end with this process, even on SIGKILL
(Linux: the kernel's parent-death signal).
"""

from __future__ import annotations

import os
import queue
import signal
import traceback
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from forgetlab import plugins
from forgetlab.errors import ForgetlabError

# progress(key, done_steps, total_steps, status): forwarded from the worker training that job
Progress = Callable[[Any, int, int, str], None]


@dataclass(frozen=True)
class Job:
    key: Any  # the caller's handle, given back with the result
    cost: float  # relative amount of work: larger jobs start first, so the last to finish are short
    fn: Callable  # a module-level function: fn(*args, progress=callable) -> picklable result
    args: tuple = ()


def program_cost(config, n_members: int) -> float:
    """Relative training work of one program of ``n_members`` members of ``config`` (a RunConfig):
    examples seen (classes trained x passes, or steps x batch) x weights per member x members, doubled
    for what leaves the hand-written MLP step: a strategy's loss or dropout's per-step masks (about twice
    the training time of the same run without them, as ``forgetlab reproduce`` logs per experiment)."""
    sizes = (784, *config.model.hidden, 10)
    weights = sum(a * b for a, b in pairwise(sizes)) * (8 if config.model.arch == "lenet5" else 1)
    n_classes = sum(len(t) for t in config.tasks)
    passes = config.train.iters * config.train.batch_size / 6000 if config.train.iters else config.train.epochs
    dropout = config.model.dropout > 0 or any(k == "model.dropout" and any(vs) for k, vs in config.grid)
    slow_step = 2 if config.strategy.name != "naive" or dropout else 1
    return n_members * n_classes * passes * weights * slow_step


DEFAULT_THREADS = 1  # torch threads per process, unless --threads / threads= says otherwise


@contextmanager
def torch_threads(n: int | None):
    """torch's intra-op thread count set to ``n`` (None: ``DEFAULT_THREADS``) for the block, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n or DEFAULT_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_positive(**counts: int | None) -> None:
    """Each given count (workers=, threads=) must be >= 1: one error naming the option otherwise."""
    for name, n in counts.items():
        if n is not None and n < 1:
            raise ForgetlabError(f"--{name} {n} must be >= 1")


def check_workers(workers: int | None) -> int:
    if workers is None:
        return default_workers()
    if workers < 1:
        raise ForgetlabError(f"--workers {workers} must be >= 1 (default: {default_workers()}, one per core)")
    return workers


def run_jobs(
    jobs: Sequence[Job],
    done: Callable[[Any, Any], None],
    *,
    workers: int = 1,
    threads: int | None = None,
    progress: Progress | None = None,
) -> None:
    """Run every job; call ``done(key, result)`` here as each finishes. ``threads``: torch threads per
    worker (None: ``DEFAULT_THREADS``), also with one worker, which runs the jobs in this process."""
    order = sorted(jobs, key=lambda j: -j.cost)
    workers = min(workers, len(order))
    threads = threads or DEFAULT_THREADS
    if workers <= 1:
        with torch_threads(threads):
            for job in order:
                fwd = None if progress is None else (lambda d, t, s, k=job.key: progress(k, d, t, s))
                done(job.key, job.fn(*job.args, progress=fwd))
        return
    _run_pool(order, done, workers, threads, progress)


def _run_pool(order: list[Job], done, workers: int, threads: int, progress: Progress | None) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: forking a process whose OpenMP pool runs can hang
    tasks, results = ctx.Queue(), ctx.Queue()
    for i, job in enumerate(order):
        tasks.put((i, job.fn, job.args))
    for _ in range(workers):
        tasks.put(None)
    args = (tasks, results, threads, progress is not None, plugins.imported())
    procs = [ctx.Process(target=_worker, args=args, daemon=True) for _ in range(workers)]
    for p in procs:
        p.start()
    pending = len(order)
    try:
        while pending:
            try:
                i, kind, payload = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise ForgetlabError(
                        f"a worker process died (exit code {dead[0]}); finished work is kept, "
                        f"run the same command again to continue"
                    ) from None
                continue
            if kind == "progress":
                if progress is not None:
                    progress(order[i].key, *payload)
            elif kind == "error":
                raise ForgetlabError(payload)
            elif kind == "crash":
                raise RuntimeError(f"a worker failed on {order[i].key!r}:\n{payload}")
            else:
                pending -= 1
                done(order[i].key, payload)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
        tasks.cancel_join_thread()
        results.cancel_join_thread()


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers are daemons, ended at a normal exit
        pass


def _worker(tasks, results, threads: int, report_progress: bool, imported: Sequence = ()) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when a job first imports it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole process group: the parent decides
    _die_with_parent()
    try:
        plugins.import_again(imported)  # before the first job is unpickled: its arguments may need them
    except ForgetlabError as e:
        results.put((0, "error", f"in a worker process: {e}"))
        return
    while (item := tasks.get()) is not None:
        i, fn, args = item
        fwd = (lambda d, t, s, i=i: results.put((i, "progress", (d, t, s)))) if report_progress else None
        try:
            results.put((i, "done", fn(*args, progress=fwd)))
        except ForgetlabError as e:
            results.put((i, "error", str(e)))
        except BaseException:  # noqa: BLE001 - reported with its traceback in the parent
            results.put((i, "crash", traceback.format_exc()))

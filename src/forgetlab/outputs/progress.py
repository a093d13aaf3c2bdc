"""Progress bars: one for a training run, one over several programs (worker processes report to it).

``tqdm`` draws them on a terminal and stays silent elsewhere (``disable=None``).
"""

from __future__ import annotations


def run_bar(desc: str):
    """A callable(done_steps, total_steps, status) drawing one run's progress."""
    from tqdm.auto import tqdm

    bar = None

    def update(done: int, total: int, status: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=False, disable=None)
        elif bar.total != total:  # a strategy widened a task's data
            bar.total = total
        bar.update(done - bar.n)
        if status:
            bar.set_postfix_str(status)
        if done >= total and status:
            bar.close()

    return update


def programs_bar(desc: str):
    """One bar over several programs that report (key, done_steps, total_steps, status), e.g. from worker
    processes: the steps of every program started so far, the latest status beside them. Call ``.close()``."""
    from tqdm.auto import tqdm

    return _ProgramsBar(tqdm(total=0, desc=desc, unit="step", dynamic_ncols=True, leave=False, disable=None))


class _ProgramsBar:
    """``programs_bar``'s callable: ``bar(key, done, total, status)``, then ``bar.close()``."""

    def __init__(self, bar):
        self.bar, self.steps = bar, {}
        self.close = bar.close

    def __call__(self, key, done: int, total: int, status: str) -> None:
        self.steps[key] = (done, total)
        self.bar.total = sum(t for _, t in self.steps.values())
        self.bar.update(sum(d for d, _ in self.steps.values()) - self.bar.n)
        if status:
            self.bar.set_postfix_str(f"{key}: {status}")

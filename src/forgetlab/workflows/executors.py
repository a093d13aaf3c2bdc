"""Executors: where a sweep's batched programs run.

A program is one ``sweep.Group`` (a config and its members); ``train_group`` runs it from plain data (a config
dict and [(seed, hparams)]) and returns plain data, so the same function runs in this process
(``run_local``: in local worker processes, or in this one) or in a Ray task (``run_ray``). Each executor
calls ``done(group, result)`` as programs finish.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from forgetlab import config as cfg
from forgetlab.config import Member
from forgetlab.data import sources as data_sources
from forgetlab.errors import ForgetlabError, require


class Program(Protocol):
    """What an executor needs of a program (sweep.Group, a dataclass): its config and its members, each
    with ``seed`` and ``member.hparams``."""

    @property
    def config(self) -> cfg.RunConfig: ...

    @property
    def members(self) -> Sequence: ...


P = TypeVar("P", bound=Program)


def train_group(config: dict, members: list[tuple[int, dict]], progress: Callable | None = None) -> dict:
    """Train ``members`` [(seed, hparams)] of ``config`` (a to_dict) as one program; plain data out.

    Raises KeyboardInterrupt if training was interrupted: an unfinished group stores nothing.
    """
    from forgetlab.engine.training import train

    run_config = cfg.from_dict(config)
    device = data_sources.resolve_device(run_config.device)
    data = data_sources.load_data(run_config, device)
    res = train(run_config, data, progress=progress, members=[Member(s, hp) for s, hp in members])
    if res.status != "complete":
        raise KeyboardInterrupt("interrupted inside a group")
    return {
        "elapsed_s": res.elapsed_s,
        "device": res.device,
        "members": [{"tasks": [vars(t) for t in m.tasks], "acc_matrix": m.acc_matrix} for m in res.members],
    }


def _payload(group: Program, config: cfg.RunConfig | None = None) -> tuple[dict, list[tuple[int, dict]]]:
    """What ``train_group`` takes: the group's config (or ``config`` instead) as a dict, and its members."""
    return cfg.to_dict(config or group.config), [(m.seed, m.member.hparams) for m in group.members]


def run_local(
    groups: list[P],
    done: Callable[[P, dict], None],
    progress: Callable | None = None,
    *,
    workers: int = 1,
    threads: int | None = None,
) -> None:
    """Largest program first, on ``workers`` local processes of ``threads`` torch threads each (one worker:
    in this process). ``progress(group, done_steps, total_steps, status)``."""
    from forgetlab.workflows.pool import Job, program_cost, run_jobs

    jobs = [Job(g, program_cost(g.config, len(g.members)), train_group, _payload(g)) for g in groups]
    run_jobs(jobs, done, workers=workers, threads=threads, progress=progress)


def _check_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast (one line) when a Ray address does not answer, instead of Ray's long retries."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ForgetlabError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ForgetlabError(
            f"Ray address {address} does not answer ({e.strerror or type(e).__name__} "
            f"within {timeout:g} s); start the cluster with 'ray start --head' or fix --address"
        ) from None


def _ray_init(ray, address: str | None, wait_s: int = 3) -> None:
    """Connect (or start a local instance); a cluster that does not answer fails in a few seconds."""
    import os

    if address:
        _check_address(address)
    # Ray retries a silent GCS for about 20 s, its C++ client logging a line a second to fd 2:
    # ask for wait_s tries, and keep those lines off the terminal while connecting
    env = {"RAY_gcs_server_port_wait_time_s": str(wait_s)} if address else {}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    sys.stderr.flush()
    stderr_fd = os.dup(2)
    if address:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except Exception as e:  # noqa: BLE001 - Ray raises many kinds for "no cluster there"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ForgetlabError(
            f"cannot connect to Ray at {address or 'a new local instance'} ({reason}); "
            f"start one with 'ray start --head' or fix --address"
        ) from None
    finally:
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _absolute_data_root(config: cfg.RunConfig) -> cfg.RunConfig:
    """Workers do not share the driver's working directory (nor, on a cluster, its environment):
    send the data folder as the absolute path the driver resolved. Nodes need the data at that path."""
    root = cfg.data_root(config).expanduser().resolve()
    return cfg.override(config, "data.root", str(root))  # not part of any identity


def run_ray(groups: list[P], done: Callable[[P, dict], None], address: str | None = None) -> None:
    """One Ray task per group; results are gathered here, in the order they finish."""
    ray = require("ray", "ray", "--executor ray")
    if not ray.is_initialized():
        _ray_init(ray, address)
    task = ray.remote(num_cpus=1, max_retries=1)(train_group)
    pending = {task.remote(*_payload(g, _absolute_data_root(g.config))): g for g in groups}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ready[0])
            done(group, ray.get(ready[0]))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


EXECUTORS = ("local", "ray")

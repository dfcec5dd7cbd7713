"""Worker processes for the long jobs that run in parallel (world build, iso-epoch experiment).

Workers are spawned (no inherited torch or GL state) and, on Linux, die with the process that started them,
even when it is killed by SIGKILL, so that a killed job leaves no orphan writing into its output.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor


def die_with_parent() -> None:
    """A worker's initializer: on Linux, be killed when the parent process dies (elsewhere this does nothing)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def process_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes that die with this one."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent)


def threads_per_worker(workers: int) -> int:
    """This process's torch threads (the cores, or OMP_NUM_THREADS) shared among `workers` processes: at least
    one thread each."""
    import torch

    return max(1, torch.get_num_threads() // workers)

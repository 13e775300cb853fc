"""One compute thread per process, for processes that share the cores with other coders
(forked batch workers, Spark tasks, the batch parent while its workers run)."""

from __future__ import annotations

from typing import Any


def one_thread() -> tuple[int | None, Any]:
    """One torch and one BLAS/OpenMP thread in this process; returns what to restore: torch's
    thread count (None without torch) and the ``threadpoolctl`` limits. Torch's count is read
    first: the BLAS limits also cap the OpenMP pool torch reports."""
    from threadpoolctl import threadpool_limits

    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return None, threadpool_limits(1)
    before = torch.get_num_threads()
    limits = threadpool_limits(1)
    torch.set_num_threads(1)
    return before, limits

"""Execute the notebooks of ``notebooks/`` (CI runs each on a small sample; maintainers re-run
them on a larger one and commit the outputs).

    python -m clinicode.training.notebooks notebooks/*.ipynb --sample 200 --save

Each notebook reads ``CLINICODE_NB_SAMPLE`` (how many notes) and ``CLINICODE_DATA_DIR`` (the
data dir with the code sets), and finds ``../shared/data`` from the ``notebooks/`` folder
(``CLINICODE_SHARED_DATA`` overrides). The kernel is ``python3`` of the running interpreter
(jupyter_client runs a kernelspec whose command is ``python`` with ``sys.executable``), so a
notebook imports the same ``clinicode`` as the caller. Needs the ``notebooks`` extra.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SAMPLE_ENV = "CLINICODE_NB_SAMPLE"


def run_notebook(
    path: Path | str,
    *,
    sample: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: int = 600,
    save: bool = False,
) -> tuple[Any, float]:
    """Execute ``path`` in its own folder; returns the executed notebook and the seconds taken.
    ``save`` writes it back with its outputs."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env or {})
    if sample is not None:
        os.environ[SAMPLE_ENV] = str(sample)
    try:
        t = time.perf_counter()
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        took = time.perf_counter() - t
    finally:
        os.environ.clear()
        os.environ.update(old)
    if save:
        nbformat.write(nb, path)
    return nb, took


def main() -> None:
    ap = argparse.ArgumentParser(description="Execute notebooks (and save their outputs).")
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--sample", type=int, default=None, help=f"sets {SAMPLE_ENV}")
    ap.add_argument("--save", action="store_true", help="write the outputs into the notebooks")
    ap.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    args = ap.parse_args()
    for p in args.paths:
        _, took = run_notebook(p, sample=args.sample, save=args.save, timeout=args.timeout)
        print(f"{p}: executed in {took:.1f} s" + (" (saved)" if args.save else ""))


if __name__ == "__main__":
    main()

"""How long the ranker fit of ``clinicode train --base`` takes, and whether OpenMP settings
change it (they must not change the model).

    CLINICODE_DATA_DIR=... .venv/bin/python bench/bench_ranker_fit.py [--notes 60] [--max-iter 300]

Fits ``models.ranker.GBDTRanker`` (the training defaults: 300 trees, 3 out-of-fold fits + the
final one) on the default pack's kept synthetic-note rows (``ModelPack.training_rows``, the rows
``train --base`` adds to the new notes'), once per OpenMP setting, each in a fresh process
(``OMP_*`` is read when the OpenMP runtime loads): the runtime's defaults, a passive wait
policy (idle threads sleep instead of spinning), one thread. Prints wall and CPU seconds of
each fit and a hash of its predictions: the same hash means the same model. On a shared,
loaded machine spinning OpenMP threads can cost far more than they save; print ``uptime``
next to the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1-thread": {"OMP_NUM_THREADS": "1"},
}


def _rows(notes: int, out: Path) -> tuple[int, ...]:
    import numpy as np

    from clinicode.kb import open_kb
    from clinicode.models import pack as pack_mod
    from clinicode.models.features import feature_names, vectorize
    from clinicode.models.pack_registry import serving_pack_dir
    from clinicode.settings import get_settings
    from clinicode.training.train import first_notes

    kb = open_kb()
    pack = pack_mod.load(serving_pack_dir(get_settings()), kb=kb, training_rows=True)
    if pack.training_rows is None:
        raise SystemExit("the serving pack keeps no training rows: rebuild it (clinicode setup)")
    rows = first_notes(pack.training_rows, notes)
    names = feature_names(rows.feats)
    X = vectorize(rows.feats, names)
    np.savez(out, X=X, y=np.asarray(rows.y), groups=np.asarray(rows.groups), names=names)
    return tuple(X.shape)


def _child(data: Path, max_iter: int) -> None:
    import numpy as np

    from clinicode.models.ranker import GBDTRanker

    d = np.load(data)
    t, c = time.perf_counter(), time.process_time()
    ranker = GBDTRanker(
        max_iter=max_iter, learning_rate=0.05, n_folds=3, feature_names=list(d["names"])
    ).fit(d["X"], d["y"], groups=d["groups"])
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    probs = ranker.predict_proba(d["X"])[:, 1]
    digest = hashlib.sha256(probs.tobytes() + ranker.oof_calibrated_.tobytes()).hexdigest()[:16]
    print(json.dumps({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "model": digest}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--notes", type=int, default=60, help="synthetic notes whose rows to fit")
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        _child(args.child, args.max_iter)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.npz"
        shape = _rows(args.notes, data)
        print(f"rows x features: {shape}; load average {os.getloadavg()}")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
        for name, env in VARIANTS.items():
            cmd = [sys.executable, __file__, "--child", str(data), "--max-iter", str(args.max_iter)]
            res = subprocess.run(
                cmd, env={**base_env, **env}, capture_output=True, text=True, check=True
            )
            fig = json.loads(res.stdout.strip().splitlines()[-1])
            print(
                f"  {name:<9} wall {fig['wall_s']:>7.1f} s  cpu {fig['cpu_s']:>7.1f} s  "
                f"model {fig['model']}  (load average {os.getloadavg()[0]:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

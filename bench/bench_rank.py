"""Ranking quality on CodiEsp English: train on train, tune the threshold on dev, report dev.

    .venv/bin/python bench/bench_rank.py --train --out /tmp/codiesp-pack   # train (timed) + dev
    .venv/bin/python bench/bench_rank.py --pack /tmp/codiesp-pack          # dev figures of a pack
    .venv/bin/python bench/bench_rank.py --pack ~/.local/share/clinicode/packs/default  # default

Prints JSON: for D and P, in the ranker's order (and ``dev_D_served``: the order ``suggest``
serves), MAP over all dev documents, the CodiEsp-script MAP, micro P/R/F1 at the
pack threshold (chosen on dev when the pack was trained with --dev: tuned-on-dev figures), P@5,
P@10, R@10, R@50, and the training time. The test split is never read.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data")) / "codiesp"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", type=Path, default=None)
    ap.add_argument("--train", action="store_true", help="train a pack on CodiEsp train first")
    ap.add_argument("--out", type=Path, default=Path("/tmp/clinicode-codiesp-pack"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from clinicode.kb import open_kb
    from clinicode.training.data import load_codiesp
    from clinicode.training.evaluate import evaluate_pack, load_path
    from clinicode.training.train import TrainConfig, train_pack

    report: dict[str, object] = {}
    dev = load_codiesp(DATA / "dev")
    pack_dir = args.pack
    if args.train:
        t0 = time.perf_counter()
        train = load_codiesp(DATA / "train")
        rep = train_pack(
            train, kb=open_kb(), out=args.out, dev_notes=dev, cfg=TrainConfig(seed=args.seed)
        )
        report["train_s"] = round(time.perf_counter() - t0, 1)
        report["train_timings"] = rep["timings"]
        report["calibration_dev"] = rep["calibration"].get("dev")
        pack_dir = args.out
    path = load_path(pack_dir)
    report["pack"] = path.info.model_dump()
    for task in ("D", "P"):
        res = evaluate_pack(path, dev, task, progress=False)  # type: ignore[arg-type]
        report[f"dev_{task}"] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in res.items() if k != "orders"
        }
        report[f"dev_{task}_served"] = {k: round(v, 4) for k, v in res["orders"]["served"].items()}
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

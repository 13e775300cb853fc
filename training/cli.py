"""``clinicode train`` and ``clinicode evaluate`` (``clinicode suggest`` is the facade's, in
``clinicode/cli.py``: training never imports the engine).

``register(app)`` adds them to the root command (``clinicode/cli.py`` calls it lazily).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from clinicode.errors import InputError

DataOpt = typer.Option(
    ..., "--data", help="Labeled notes: a CodiEsp split folder, JSONL, or a MIMIC-IV folder."
)
FormatOpt = typer.Option("codiesp", "--format", help="codiesp | jsonl | mimic-iv")
ModelOpt = typer.Option(
    None,
    "--model",
    help="Model pack folder (default: the default pack). Repeat it to compare packs on the same "
    "notes: each pack after the first is compared with the first.",
)
SplitFileOpt = typer.Option(
    None,
    "--split-file",
    help="mimic-iv: CSV of hadm_id (or _id) and split (train/val/test), as Edin et al. 2023.",
)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _check_format(fmt: str) -> None:
    if fmt not in ("codiesp", "jsonl", "mimic-iv"):
        raise InputError(f"--format must be codiesp, jsonl or mimic-iv, not {fmt!r}")


def _load(
    data: Path, fmt: str, split_file: Path | None, split: str | None, kb: object = None
) -> list[object]:
    """Labeled notes; for mimic-iv, checked against the KB, with what was kept and dropped
    written to stderr (counts only, never note text)."""
    from clinicode.training.data import load_notes

    if fmt != "mimic-iv":
        if split_file is not None or split is not None:
            raise InputError("--split-file and --split are for --format mimic-iv")
        return list(load_notes(data, fmt))
    from clinicode.kb import open_kb
    from clinicode.training.mimic import MimicStats

    stats = MimicStats()
    notes = load_notes(
        data, "mimic-iv", split_file=split_file, split=split, kb=kb or open_kb(), stats=stats
    )
    typer.echo("mimic-iv: " + json.dumps(stats.as_dict()), err=True)
    return list(notes)


def _dropped_features(spec: str) -> tuple[str, ...]:
    from clinicode.training.default_pack import TITLE_FEATURES

    out: list[str] = []
    for name in (n.strip() for n in spec.split(",")):
        if name == "title":
            out.extend(TITLE_FEATURES)
        elif name:
            out.append(name)
    return tuple(out)


def train_cmd(
    data: Path = DataOpt,
    fmt: str = FormatOpt,
    out: Path = typer.Option(..., "--out", help="Folder to write the new pack to."),
    base: Path | None = typer.Option(None, "--base", help="Reuse this pack's candidate index."),
    dev: Path | None = typer.Option(
        None, "--dev", help="Labeled dev notes (same format) to choose the threshold on."
    ),
    seed: int = typer.Option(0, help="Random seed."),
    name: str = typer.Option("clinicode-trained", help="Pack name."),
    generators: str = typer.Option(
        "lexical,structure,pcs,encoder",
        help="Candidate generators, comma-separated (lexical, dense, structure, pcs, encoder), "
        "or 'none'.",
    ),
    folds: int = typer.Option(5, min=2, help="Cross-fitting folds of the note classifier."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    drop_features: str = typer.Option(
        "",
        "--drop-features",
        help="Ranker features to leave out, comma-separated; 'title' = the title features "
        "(to measure what they add with `evaluate --model A --model B`).",
    ),
    split_file: Path | None = SplitFileOpt,
    split: str | None = typer.Option(
        None, "--split", help="mimic-iv: train on this split of --split-file (e.g. train)."
    ),
    dev_split: str = typer.Option(
        "val", "--dev-split", help="mimic-iv: the split of --split-file --dev reads."
    ),
) -> None:
    """Train a model pack on labeled notes and print the training report (JSON)."""
    from clinicode.kb import open_kb
    from clinicode.models import registry
    from clinicode.training.train import TrainConfig, train_pack

    _check_format(fmt)
    gens = tuple(g.strip() for g in generators.split(",") if g.strip() and g.strip() != "none")
    known = registry.names("candidate_generator")
    for g in gens:
        if g not in known:
            raise InputError(f"unknown candidate generator {g!r}; choose from {', '.join(known)}")
    kb = open_kb()
    dropped = _dropped_features(drop_features)
    notes: Any = _load(data, fmt, split_file, split, kb)
    dev_notes: Any = None
    if dev is not None:
        mimic_dev = fmt == "mimic-iv" and split_file is not None
        dev_notes = _load(dev, fmt, split_file, dev_split if mimic_dev else None, kb)
    report = train_pack(
        notes,
        kb=kb,
        out=out,
        dev_notes=dev_notes,
        base=base,
        cfg=TrainConfig(
            seed=seed, name=name, generators=gens, n_folds=folds, drop_features=dropped
        ),
        progress=not quiet,
        log=lambda m: typer.echo(m, err=True),
    )
    _print_json({"pack": str(out), **report})


def evaluate_cmd(
    data: Path = DataOpt,
    fmt: str = FormatOpt,
    task: str = typer.Option("D", "--task", help="D (diagnoses) or P (procedures)."),
    model: list[Path] | None = ModelOpt,
    predictions_out: Path | None = typer.Option(
        None,
        "--predictions-out",
        help="Write the ranked predictions of --order, doc<TAB>code (CodiEsp format).",
    ),
    order: str = typer.Option(
        "ranker",
        "--order",
        help="ranker: by the ranker's score, before the guidelines; served: exactly what "
        "`suggest` serves (codes, candidates, then suppressed). Both are reported under "
        "'orders'; this one is the top-level figures and --predictions-out.",
    ),
    setting: str = typer.Option("outpatient", help="inpatient | outpatient (served order)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Write a self-contained HTML comparison (tables, precision-recall, calibration, "
        "score histograms, codes gained and lost); needs matplotlib.",
    ),
    bootstrap: int = typer.Option(
        2000, "--bootstrap", min=100, help="Comparison: paired bootstrap resamples of the notes."
    ),
    seed: int = typer.Option(0, "--seed", help="Comparison: the bootstrap's random seed."),
    split_file: Path | None = SplitFileOpt,
    split: str | None = typer.Option(
        None, "--split", help="mimic-iv: evaluate on this split of --split-file (e.g. test)."
    ),
) -> None:
    """MAP, CodiEsp MAP, micro P/R/F1, P@5/10, R@10/50 in the ranker's and the served order (JSON).

    With several --model (or --report): every pack on the same notes, each compared with the
    first (paired bootstrap 95% intervals of the MAP and micro-F1 differences, per chapter and
    per code tables, codes gained and lost)."""
    from clinicode.training.evaluate import ORDERS, evaluate_pack, load_path

    _check_format(fmt)
    if task not in ("D", "P"):
        raise InputError(f"--task must be D or P, not {task!r}")
    if order not in ORDERS:
        raise InputError(f"--order must be ranker or served, not {order!r}")
    if setting not in ("inpatient", "outpatient"):
        raise InputError(f"--setting must be inpatient or outpatient, not {setting!r}")
    models = list(model or [])
    if report is not None:
        from clinicode.training.report import require_matplotlib

        require_matplotlib()
    if len(models) > 1 or report is not None:
        if predictions_out is not None:
            raise InputError("--predictions-out takes a single --model (no comparison)")
        notes = _load(data, fmt, split_file, split)
        _compare(models, notes, task, order, setting, report, bootstrap, seed, quiet)  # type: ignore[arg-type]
        return
    notes = _load(data, fmt, split_file, split)
    result = evaluate_pack(
        load_path(models[0] if models else None),
        notes,
        task,
        order=order,
        setting=setting,
        predictions_out=predictions_out,
        progress=not quiet,
    )
    _print_json(result)


def _compare(
    models: list[Path | None],
    notes: list[Any],
    task: Any,
    order: Any,
    setting: str,
    report: Path | None,
    n_boot: int,
    seed: int,
    quiet: bool,
) -> None:
    from clinicode.kb import open_kb
    from clinicode.training.compare import compare_runs, run_pack, unique_labels
    from clinicode.training.evaluate import load_path

    kb = open_kb()
    dirs = models or [None]
    labels = unique_labels([d.name if d is not None else "default" for d in dirs])
    runs = []
    for d, label in zip(dirs, labels, strict=True):
        if not quiet:
            typer.echo(f"scoring {len(notes)} notes with {label}", err=True)
        path = load_path(d, kb)
        runs.append(
            run_pack(
                path, notes, task, label=label, order=order, setting=setting, progress=not quiet
            )
        )
    gold = {n.id: n.codes_for(task) for n in notes}
    result = {
        "task": task,
        "order": order,
        "setting": setting,
        **compare_runs(runs, gold, kb=kb, n_boot=n_boot, seed=seed),
    }
    if report is not None:
        from clinicode.training.report import render_report

        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render_report(result, runs, gold), encoding="utf-8")
        result["report"] = str(report)
    _print_json(result)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)

"""A small Prometheus text-format registry (counters and histograms), per worker process.

Each uvicorn worker keeps its own numbers; every series carries a ``worker`` label (the pid)
so that a scraper summing over workers gets the totals.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Sequence

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x))


class Counter:
    def __init__(self, name: str, help_: str, labels: Sequence[str]) -> None:
        self.name, self.help, self.labels = name, help_, tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[label_values] = self._values.get(label_values, 0.0) + amount

    def value(self, *label_values: str) -> float:
        return self._values.get(label_values, 0.0)

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        out += [f"{self.name}{_labels(self.labels, k)} {_num(v)}" for k, v in items]
        return out


class Histogram:
    def __init__(
        self,
        name: str,
        help_: str,
        labels: Sequence[str],
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        self.name, self.help, self.labels = name, help_, tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[tuple[str, ...], list[int]] = {}
        self._sums: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, *label_values: str) -> None:
        i = bisect_left(self.buckets, value)
        with self._lock:
            counts = self._counts.setdefault(label_values, [0] * (len(self.buckets) + 1))
            counts[i] += 1
            self._sums[label_values] = self._sums.get(label_values, 0.0) + value

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = sorted((k, list(v), self._sums[k]) for k, v in self._counts.items())
        for key, counts, total in items:
            cum = 0
            for bound, c in zip((*self.buckets, float("inf")), counts, strict=True):
                cum += c
                le = "+Inf" if bound == float("inf") else _num(bound)
                le_label = 'le="' + le + '"'
                out.append(f"{self.name}_bucket{_labels(self.labels, key, le_label)} {cum}")
            out.append(f"{self.name}_sum{_labels(self.labels, key)} {total!r}")
            out.append(f"{self.name}_count{_labels(self.labels, key)} {cum}")
        return out


class Metrics:
    """The service's metrics."""

    def __init__(self) -> None:
        self.worker = str(os.getpid())
        self.requests = Counter(
            "clinicode_http_requests_total",
            "HTTP requests by method, route and status.",
            ("worker", "method", "route", "status"),
        )
        self.latency = Histogram(
            "clinicode_http_request_duration_seconds",
            "HTTP request latency by method and route.",
            ("worker", "method", "route"),
        )
        self.suggestions = Counter(
            "clinicode_suggestions_total",
            "Codes returned by /v1/suggest, by system and status.",
            ("worker", "system", "status"),
        )
        self.notes = Counter(
            "clinicode_notes_total", "Notes coded by the engine.", ("worker", "setting")
        )
        self.feedback = Counter(
            "clinicode_feedback_total", "Feedback rows recorded, by action.", ("worker", "action")
        )

    def render(self, model_loaded: bool) -> str:
        lines: list[str] = []
        for m in (self.requests, self.latency, self.suggestions, self.notes, self.feedback):
            lines += m.render()
        lines += [
            "# HELP clinicode_model_loaded 1 once the model pack is loaded in this worker.",
            "# TYPE clinicode_model_loaded gauge",
            f'clinicode_model_loaded{{worker="{self.worker}"}} {int(model_loaded)}',
        ]
        return "\n".join(lines) + "\n"

"""What a soak run found, as a table for people and as JSON for tools."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


@dataclass
class KindStats:
    """The answers to one kind of request: latency of each (ms, from when it was due to
    start), and how many answered with an unexpected status or failed (by status, or by
    the client's exception name)."""

    served_by: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return len(self.latencies)


@dataclass
class Outcome:
    """A whole run: per kind, plus the server's resident memory (bytes) sampled each second
    and the requests never sent because too many were in flight."""

    kinds: dict[str, KindStats]
    rss: list[int] = field(default_factory=list)
    unsent: int = 0

    @property
    def errors(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for stats in self.kinds.values():
            total.update(stats.errors)
        if self.unsent:
            total["unsent"] = self.unsent
        return total

    @property
    def clean(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        every = [latency for stats in self.kinds.values() for latency in stats.latencies]
        return {
            "requests": len(every),
            "errors": dict(self.errors),
            "p50_ms": percentile(every, 50),
            "p99_ms": percentile(every, 99),
            "rss_start": self.rss[0] if self.rss else None,
            "rss_end": self.rss[-1] if self.rss else None,
            "rss_peak": max(self.rss, default=None),
            "kinds": {
                name: {
                    "served_by": stats.served_by,
                    "sent": stats.sent,
                    "errors": dict(stats.errors),
                    "p50_ms": percentile(stats.latencies, 50),
                    "p99_ms": percentile(stats.latencies, 99),
                }
                for name, stats in self.kinds.items()
            },
        }


def percentile(values: list[float], rank: float) -> float | None:
    """The nearest-rank ``rank``-th percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(rank / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def table(outcome: Outcome) -> str:
    """The report: a line per kind and one for all, the errors, the memory."""
    summary = outcome.to_json()
    lines = [f"{'kind':<16}{'path':<11}{'sent':>8}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}"]
    for name, kind in summary["kinds"].items():
        lines.append(_row(name, kind["served_by"], kind["sent"], kind["errors"], kind))
    lines.append(_row("all", "", summary["requests"], summary["errors"], summary))
    errors = summary["errors"]
    described = ", ".join(f"{status} × {count}" for status, count in sorted(errors.items()))
    lines.append(f"errors by status: {described or 'none'}")
    if outcome.rss:
        start, end, peak = summary["rss_start"], summary["rss_end"], summary["rss_peak"]
        lines.append(
            f"server RSS: start {start / MIB:.1f} MiB, end {end / MIB:.1f} MiB "
            f"({(end - start) / MIB:+.1f} MiB), peak {peak / MIB:.1f} MiB"
        )
    return "\n".join(lines)


def _row(name: str, served_by: str, sent: int, errors: dict[str, int], timed: dict) -> str:
    return (
        f"{name:<16}{served_by:<11}{sent:>8}{sum(errors.values()):>8}"
        f"{_ms(timed['p50_ms']):>10}{_ms(timed['p99_ms']):>10}"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_json(outcome: Outcome, path: Path) -> None:
    path.write_text(json.dumps(outcome.to_json(), indent=2) + "\n")

"""The targets of the engine issue (13) and the store issue (14), judged on one run's figures.

Every target compares one of our phases with a fixed rate or with a baseline
measured in the same run on the same file, so a slow or busy machine moves
both sides. A phase that could not run (e.g. PostgreSQL not ready) carries
`unavailable` with its reason: its targets are reported so, never as met.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from bench import cpu

RSS_LIMIT_MB = 300

OUR_PHASES = (
    "import-fresh",
    "import-fresh-gzip",
    "import-update",
    "import-fresh-postgres",
    "export-full-gzip-postgres",
    "segment-eval",
    "export-full-gzip",
    "cli-import-fresh",
    "cli-import-update",
    "cli-export-full-gzip",
    "daemons-one",
    "daemons-two",
)
"""Phases that run our code: the peak-RSS target takes the worst of them."""

DAEMON_PHASES = ("daemons-one", "daemons-two")
"""Phases of `connector daemon` processes: each daemon's own peak RSS is judged too."""

Phases = dict[str, dict[str, Any]]


class Target(NamedTuple):
    """`phase` must reach `factor` x the rate of `baseline` (or `factor` rows/s without one)."""

    name: str
    phase: str
    factor: float
    baseline: str | None = None


TARGETS = (
    Target("fresh import >= 1.5x pandas glue", "import-fresh", 1.5, "pandas"),
    Target("fresh import >= 0.4x csv.reader", "import-fresh", 0.4, "csv-reader"),
    Target("update >= 1.0x pandas glue", "import-update", 1.0, "pandas"),
    Target("gzip export >= 250k rows/s", "export-full-gzip", 250_000),
    Target("gzip export >= 2x csv.writer+gzip 6", "export-full-gzip", 2.0, "csv-writer-gzip"),
    Target("segment evaluation >= 500k profiles/s", "segment-eval", 500_000),
    Target("cli fresh import >= 1.2x pandas script", "cli-import-fresh", 1.2, "cli-pandas"),
    Target("cli update >= 0.8x pandas script", "cli-import-update", 0.8, "cli-pandas"),
    Target("cli gzip export >= 200k rows/s", "cli-export-full-gzip", 200_000),
    Target("PostgreSQL import >= 0.5x SQLite", "import-fresh-postgres", 0.5, "import-fresh"),
    Target("two daemons >= 1.6x one daemon", "daemons-two", 1.6, "daemons-one"),
)

RATIOS = {
    "import_fresh_vs_pandas": ("import-fresh", "pandas"),
    "import_fresh_vs_csv_reader": ("import-fresh", "csv-reader"),
    "import_update_vs_pandas": ("import-update", "pandas"),
    "export_vs_csv_writer_gzip": ("export-full-gzip", "csv-writer-gzip"),
    "cli_fresh_vs_pandas_script": ("cli-import-fresh", "cli-pandas"),
    "cli_update_vs_pandas_script": ("cli-import-update", "cli-pandas"),
    "postgres_vs_sqlite_import": ("import-fresh-postgres", "import-fresh"),
    "postgres_vs_sqlite_export": ("export-full-gzip-postgres", "export-full-gzip"),
    "daemons_two_vs_one": ("daemons-two", "daemons-one"),
}


def missing(phases: Phases, name: str) -> str | None:
    """Why a phase has no rate in this run (not run, or unavailable), or None when it has one."""
    phase = phases.get(name)
    if phase is None:
        return "not run"
    if "unavailable" in phase:
        return f"unavailable: {phase['unavailable']}"
    return None


def judge(phases: Phases, memory: dict[str, float]) -> list[dict[str, Any]]:
    """Each target: the figure it needs, the one measured, met or not (or why not measured);
    the daemons target also the most this machine's cores allow (`ceiling`)."""
    verdicts = [_judge(target, phases) for target in TARGETS]
    for target, verdict in zip(TARGETS, verdicts, strict=True):
        if target.phase == "daemons-two" and (limit := _daemons_ceiling(phases)) is not None:
            verdict["ceiling"] = limit
    verdicts.append(_memory(phases, memory))
    verdicts.append(_daemon_memory(phases))
    return verdicts


def ratios(phases: Phases) -> dict[str, float | None]:
    """Ours over the baseline, each pair from this run; None where either side is missing."""
    return {
        name: (
            None
            if missing(phases, ours) or missing(phases, base)
            else round(phases[ours]["rows_per_s"] / phases[base]["rows_per_s"], 3)
        )
        for name, (ours, base) in RATIOS.items()
    }


def _judge(target: Target, phases: Phases) -> dict[str, Any]:
    needed: float | None = target.factor
    reason = missing(phases, target.phase)
    if target.baseline is not None:
        base = missing(phases, target.baseline)
        reason = reason or (base and f"baseline {target.baseline} {base}")
        needed = None if base else target.factor * phases[target.baseline]["rows_per_s"]
    measured = None if reason else phases[target.phase]["rows_per_s"]
    verdict: dict[str, Any] = {
        "target": target.name,
        "needed": None if needed is None else round(needed),
        "measured": measured,
        "met": measured is not None and needed is not None and measured >= needed,
    }
    if reason:
        verdict["reason"] = reason
    return verdict


def _daemons_ceiling(phases: Phases) -> float | None:
    """One daemon's time over the least the two daemons' own CPU work takes on every core:
    two daemons cannot gain more on this machine (see `bench.cpu`)."""
    if missing(phases, "daemons-one") or missing(phases, "daemons-two"):
        return None
    one, two = phases["daemons-one"], phases["daemons-two"]
    return cpu.ceiling(
        two.get("cores", 0), one.get("seconds", 0.0), two.get("busy_cores"), two.get("seconds", 0.0)
    )


def _memory(phases: Phases, memory: dict[str, float]) -> dict[str, Any]:
    """The worst peak RSS of our phases and of the fresh imports of the memory series."""
    peaks = {f"import-fresh at {int(size):,} rows": rss for size, rss in memory.items()}
    peaks |= {
        name: phases[name]["peak_rss_mb"]
        for name in OUR_PHASES
        if name in phases and "peak_rss_mb" in phases[name]
    }
    sizes = ", ".join(f"{int(size):,}" for size in memory) or "none"
    verdict: dict[str, Any] = {
        "target": f"peak RSS <= {RSS_LIMIT_MB} MB (rows {sizes}; every phase)",
        "needed": RSS_LIMIT_MB,
        "measured": None,
        "met": False,
    }
    if not peaks:
        verdict["reason"] = "not run"
        return verdict
    worst = max(peaks, key=peaks.__getitem__)
    verdict |= {"measured": peaks[worst], "met": peaks[worst] <= RSS_LIMIT_MB, "worst": worst}
    return verdict


def _daemon_memory(phases: Phases) -> dict[str, Any]:
    """The worst peak RSS of any one daemon process of the daemons pair."""
    peaks = {
        f"{name} daemon {number} ({', '.join(daemon['connections'])})": daemon["peak_rss_mb"]
        for name in DAEMON_PHASES
        if not missing(phases, name)
        for number, daemon in enumerate(phases[name].get("daemons", ()), 1)
    }
    verdict: dict[str, Any] = {
        "target": f"peak RSS <= {RSS_LIMIT_MB} MB per daemon (daemons-*)",
        "needed": RSS_LIMIT_MB,
        "measured": None,
        "met": False,
    }
    if not peaks:
        reasons = (missing(phases, name) for name in DAEMON_PHASES)
        verdict["reason"] = next((reason for reason in reasons if reason), "no daemons recorded")
        return verdict
    worst = max(peaks, key=peaks.__getitem__)
    verdict |= {"measured": peaks[worst], "met": peaks[worst] <= RSS_LIMIT_MB, "worst": worst}
    return verdict

"""`python -m bench`: import, export and segment throughput and peak memory, against baselines.

Every phase runs in its own process (peak RSS is the phase's own) against a
moto S3 server in another process (so the endpoint does not share our GIL).
Figures: rows/s and MB/s end to end, peak RSS, and each of ours as a ratio
to the baselines measured in the same run on the same file. The `cli-*`
phases time whole `connector run` processes (and the pandas script) from
spawn to exit on a file of their own size. The `daemons-*` pair runs two
connections' imports into PostgreSQL with one `connector daemon` process,
then with two (see `bench/daemons.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import processes
from bench.daemons import DaemonsPair
from bench.data import write_file
from bench.phases import CONNECTION, EXPORT_GOAL, IMPORT_GOAL, POSTGRES_ADMIN, write_goals
from bench.targets import judge, ratios

ROOT = Path(__file__).resolve().parent
QUICK_ROWS = 100_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)  # noqa: S310 -- our loopback server
        except OSError:
            time.sleep(0.1)
        else:
            return process, endpoint
    process.kill()
    raise SystemExit("moto server did not start")


class Bench:
    """One run's shared parts: the S3 endpoint, the work folder, the PostgreSQL admin URL."""

    def __init__(self, endpoint: str, work: Path, postgres: str) -> None:
        self.endpoint = endpoint
        self.work = work
        self.postgres = postgres

    def phase(self, name: str, file: Path, work: Path | None = None) -> dict[str, Any]:
        """Run one phase in a child process. An import's file is uploaded by a process of
        its own first: buffering the multipart upload is not the import's memory."""
        if name.startswith("import-") and name != "import-fresh-postgres":
            upload = "upload-update" if name == "import-update" else "upload-fresh"
            self.child(upload, file, work)
        if name.endswith("-postgres"):  # the export reads the database the import leaves
            return self.child(name, file, work, "--database", f"bench_export_{os.getpid()}")
        return self.child(name, file, work)

    def child(
        self, name: str, file: Path, work: Path | None = None, *options: str
    ) -> dict[str, Any]:
        work = work or self.work
        command = [sys.executable, "-m", "bench.phases", name, "--file", str(file)]
        command += ["--endpoint", self.endpoint, "--work", str(work), "--postgres", self.postgres]
        command += options
        finished = processes.spawn(command, log=work / "logs" / f"{name}.log")
        if finished.exit_code != 0:
            raise SystemExit(f"phase {name} failed (see {work / 'logs' / name}.log)")
        result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
        if "unavailable" in result:
            return result
        result["peak_rss_mb"] = finished.peak_rss_mb
        result["cores_used"] = processes.cores_used(finished)
        result["rows_per_s"] = round(result["rows"] / result["seconds"])
        result["mb_per_s"] = round(result["bytes"] / result["seconds"] / 1e6, 1)
        return result

    def cli_phases(self, file: Path) -> dict[str, dict[str, Any]]:
        """`connector run` as a user runs it: fresh import, update, gzip export; and the
        pandas script on the same file, each timed from spawn to exit."""
        work = self.work / "cli"
        database = work / "connector.sqlite"
        for stale in work.glob("connector.sqlite*"):
            stale.unlink()
        env = processes.connector_env(write_goals(work / "goals", self.endpoint), database)
        size = file.stat().st_size
        phases: dict[str, dict[str, Any]] = {}
        script = [sys.executable, "-m", "bench.phases", "pandas", "--file", str(file)]
        _progress("cli-pandas")
        phases["cli-pandas"] = processes.script_phase(
            processes.spawn([*script, "--work", str(work)], log=work / "logs" / "pandas.log")
        )
        for name, upload, goal in (
            ("cli-import-fresh", "upload-fresh", IMPORT_GOAL),
            ("cli-import-update", "upload-update", IMPORT_GOAL),
            ("cli-export-full-gzip", None, EXPORT_GOAL),
        ):
            _progress(name)
            if upload is not None:
                self.child(upload, file, work)
            finished = processes.spawn(
                processes.connector_command(CONNECTION, goal),
                env=env,
                log=work / "logs" / f"{name}.log",
            )
            if goal == IMPORT_GOAL:
                phases[name] = processes.cli_phase(finished, rows_from="read", nbytes=size)
            else:
                written = self.child("download-export", file, work)["bytes"]
                phases[name] = processes.cli_phase(finished, rows_from="exported", nbytes=written)
        return phases

    def daemons_phases(self, files: tuple[Path, Path]) -> dict[str, dict[str, Any]]:
        """One `connector daemon` running two connections' imports, then two daemons
        running one each, on PostgreSQL; each connection's file in a bucket of its own."""
        work = self.work / "daemons"

        def upload(file: Path, bucket: str) -> None:
            self.child("upload-daemon", file, work, "--bucket", bucket)

        return DaemonsPair(self.endpoint, work, self.postgres, upload).run(files)


def _progress(name: str) -> None:
    sys.stderr.write(f"  {name} ...\n")


def _dataset(rows: int, gzipped: bool, cache: Path, first: int = 0) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    start = f"-from-{first}" if first else ""
    path = cache / f"customers-{rows}{start}.csv{'.gz' if gzipped else ''}"
    if not path.exists():
        sys.stderr.write(f"generating {path.name} ...\n")
        partial = path.with_suffix(path.suffix + ".part")
        write_file(partial, rows, compress=gzipped, first=first)
        partial.rename(path)
    return path


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def run(
    rows: int,
    memory_sizes: list[int],
    work: Path,
    *,
    gzipped: bool = False,
    cli_rows: int = 600_000,
    postgres: str = POSTGRES_ADMIN,
    daemon_rows: int | None = None,
) -> dict[str, Any]:
    """Every phase and baseline in one run; segment-eval reads the store the update left.
    The daemons pair imports `daemon_rows` (default: `rows`) per connection; 0 skips it."""
    daemon_rows = rows if daemon_rows is None else daemon_rows
    work.mkdir(parents=True, exist_ok=True)
    moto, endpoint = _start_moto()
    bench = Bench(endpoint, work, postgres)
    data = work / "data"
    try:
        plain = _dataset(rows, gzipped=False, cache=data)
        phases: dict[str, dict[str, Any]] = {}
        sys.stderr.write(f"{rows:,} rows, {plain.stat().st_size / 1e6:.0f} MB\n")
        for name in (
            "csv-reader",
            "pandas",
            "import-fresh",
            "import-fresh-postgres",
            "export-full-gzip-postgres",
            "import-update",
            "segment-eval",
            "export-full-gzip",
            "csv-writer-gzip",
        ):
            _progress(name)
            phases[name] = bench.phase(name, plain)
        if gzipped:
            _progress("import-fresh-gzip")
            packed = _dataset(rows, gzipped=True, cache=data)
            phases["import-fresh-gzip"] = bench.phase("import-fresh", packed)
        memory: dict[str, float] = {}
        for size in memory_sizes:
            if size == rows:
                memory[str(size)] = phases["import-fresh"]["peak_rss_mb"]
                continue
            _progress(f"memory at {size:,} rows")
            sized = _dataset(size, gzipped=False, cache=data)
            memory[str(size)] = bench.phase("import-fresh", sized)["peak_rss_mb"]
        if cli_rows:
            sys.stderr.write(f"connector run as a process, {cli_rows:,} rows\n")
            phases |= bench.cli_phases(_dataset(cli_rows, gzipped=False, cache=data))
        if daemon_rows:
            sys.stderr.write(
                f"connector daemon processes on PostgreSQL, 2 x {daemon_rows:,} rows\n"
            )
            files = (
                _dataset(daemon_rows, gzipped=False, cache=data),
                _dataset(daemon_rows, gzipped=False, cache=data, first=daemon_rows),
            )
            phases |= bench.daemons_phases(files)
    finally:
        moto.terminate()
        moto.wait()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "targets": judge(phases, memory),
        "machine": _machine(),
        "rows": rows,
        "cli_rows": cli_rows,
        "daemon_rows": daemon_rows,
        "phases": phases,
        "ratios": ratios(phases),
        "peak_rss_mb_by_rows": memory,
    }


def print_table(report: dict[str, Any]) -> None:
    out = sys.stdout
    daemon_rows = report.get("daemon_rows", 0)
    out.write(
        f"\n{report['rows']:,} rows (cli-*: {report['cli_rows']:,}; "
        f"daemons-*: 2 x {daemon_rows:,}) on {report['machine']['cpu']} "
        f"({report['machine']['cores']} cores), Python {report['machine']['python']}, "
        f"{report['date']}\n\n"
    )
    out.write(
        f"{'phase':<24}{'rows/s':>12}{'MB/s':>9}{'seconds':>10}{'peak RSS MB':>13}{'cores':>7}\n"
    )
    for name, phase in report["phases"].items():
        if "unavailable" in phase:
            out.write(f"{name:<24}  unavailable: {phase['unavailable'][:200]}\n")
            continue
        cores = phase.get("busy_cores", phase.get("cores_used"))
        out.write(
            f"{name:<24}{phase['rows_per_s']:>12,}{phase['mb_per_s']:>9}"
            f"{phase['seconds']:>10.2f}{phase['peak_rss_mb']:>13}"
            f"{'-' if cores is None else f'{cores:.2f}':>7}\n"
        )
    out.write(
        "cores: the phase process's CPU time over its life; daemons-*: the whole machine's\n"
        "busy cores (daemons, PostgreSQL, S3) while the runs ran\n"
    )
    for name, phase in report["phases"].items():
        for number, daemon in enumerate(phase.get("daemons", ()), 1):
            out.write(
                f"  {name} daemon {number} ({', '.join(daemon['connections'])}): "
                f"peak RSS {daemon['peak_rss_mb']} MB\n"
            )
    out.write("\nratios (ours / baseline)\n")
    for name, value in report["ratios"].items():
        out.write(f"  {name:<32}{'-' if value is None else f'{value:.2f}':>8}\n")
    out.write("\ntargets\n")
    for target in report["targets"]:
        out.write(f"  {format_target(target)}\n")
    out.write("\npeak RSS of a fresh import by file size\n")
    for size, rss in report["peak_rss_mb_by_rows"].items():
        out.write(f"  {int(size):>10,} rows  {rss:>7} MB\n")


def format_target(target: dict[str, Any]) -> str:
    """One verdict line: the target, measured vs needed, met / MISSED / why not measured."""
    if target["measured"] is None:
        return f"{target['target']:<52}{'':>24}  MISSED ({target.get('reason', 'not measured')})"
    needed = "-" if target["needed"] is None else f"{target['needed']:,}"
    verdict = "met" if target["met"] else "MISSED"
    worst = f" ({target['worst']})" if "worst" in target else ""
    if "ceiling" in target:
        worst += f" (at most {target['ceiling']:.2f}x on these cores)"
    return f"{target['target']:<52}{target['measured']:>11,} vs {needed:>9}  {verdict}{worst}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows in the main run (default 1M)"
    )
    parser.add_argument(
        "--memory-sizes",
        default="100000,1000000",
        help="file sizes for the peak-RSS series (add 5000000 for the issue's 5M figure)",
    )
    parser.add_argument(
        "--cli-rows",
        type=int,
        default=600_000,
        help="rows of the file for the `connector run` process phases (0: skip them)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_ROWS:,} rows everywhere (main, memory series, cli, daemons)",
    )
    parser.add_argument(
        "--daemon-rows",
        type=int,
        default=None,
        help="rows of each connection's file for the daemons-one/-two pair "
        "(default: --rows; 0: skip the pair)",
    )
    parser.add_argument("--gzip", action="store_true", help="also import the gzip file")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN,
        help="a PostgreSQL URL allowed to create and drop the phase's database",
    )
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "work")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "latest.json")
    args = parser.parse_args()
    sizes = [int(size) for size in args.memory_sizes.split(",") if size]
    rows, cli_rows, daemon_rows = args.rows, args.cli_rows, args.daemon_rows
    if args.quick:
        rows, sizes, cli_rows = QUICK_ROWS, [QUICK_ROWS], QUICK_ROWS
    report = run(
        rows,
        sizes,
        args.work,
        gzipped=args.gzip,
        cli_rows=cli_rows,
        postgres=args.postgres,
        daemon_rows=daemon_rows,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    sys.stdout.write(f"\nwritten to {args.out}\n")


if __name__ == "__main__":
    main()

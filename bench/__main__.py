"""`python -m bench`: import and export throughput and peak memory, against baselines.

Every phase runs in its own process (peak RSS is the phase's own) against a
moto S3 server in another process (so the endpoint does not share our GIL).
Figures: rows/s and MB/s end to end, peak RSS, and each of ours as a ratio
to the baselines measured in the same run on the same file.
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

from bench.data import write_file

ROOT = Path(__file__).resolve().parent


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


def _phase(name: str, file: Path, endpoint: str, work: Path, rows: int = 0) -> dict[str, Any]:
    """Run one phase in a child process; add its peak RSS (MB) from wait4.

    An import's file is uploaded by a process of its own first: buffering the
    multipart upload is the benchmark's work, not the import's memory.
    """
    if name.startswith("import-"):
        _child(name.replace("import-", "upload-"), file, endpoint, work, rows)
    return _child(name, file, endpoint, work, rows)


def _child(name: str, file: Path, endpoint: str, work: Path, rows: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.phases",
        name,
        "--file",
        str(file),
        "--endpoint",
        endpoint,
        "--work",
        str(work),
        "--rows",
        str(rows),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT.parent)
    assert process.stdout is not None
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phase {name} failed")
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["rows_per_s"] = round(result["rows"] / result["seconds"])
    result["mb_per_s"] = round(result["bytes"] / result["seconds"] / 1e6, 1)
    return result


def _dataset(rows: int, gzipped: bool, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"customers-{rows}.csv{'.gz' if gzipped else ''}"
    if not path.exists():
        sys.stderr.write(f"generating {path.name} ...\n")
        partial = path.with_suffix(path.suffix + ".part")
        write_file(partial, rows, compress=gzipped)
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


def run(rows: int, memory_sizes: list[int], work: Path, gzipped: bool) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    moto, endpoint = _start_moto()
    try:
        plain = _dataset(rows, gzipped=False, cache=work / "data")
        phases: dict[str, dict[str, Any]] = {}
        sys.stderr.write(f"{rows:,} rows, {plain.stat().st_size / 1e6:.0f} MB\n")
        for name in ("csv-reader", "pandas", "import-fresh", "import-update", "export-full-gzip"):
            sys.stderr.write(f"  {name} ...\n")
            phases[name] = _phase(name, plain, endpoint, work)
        phases["csv-writer-gzip"] = _phase("csv-writer-gzip", plain, endpoint, work, rows)
        for name in ("store-write-floor", "store-read-floor"):
            sys.stderr.write(f"  {name} ...\n")
            phases[name] = _phase(name, plain, endpoint, work)
        if gzipped:
            packed = _dataset(rows, gzipped=True, cache=work / "data")
            phases["import-fresh-gzip"] = _phase("import-fresh", packed, endpoint, work)
        memory: dict[str, float] = {}
        for size in memory_sizes:
            if size == rows:
                memory[str(size)] = phases["import-fresh"]["peak_rss_mb"]
                continue
            sys.stderr.write(f"  memory at {size:,} rows ...\n")
            data = _dataset(size, gzipped=False, cache=work / "data")
            memory[str(size)] = _phase("import-fresh", data, endpoint, work)["peak_rss_mb"]
    finally:
        moto.terminate()
        moto.wait()
    reader = phases["csv-reader"]["rows_per_s"]
    ratios = {
        "import_fresh_vs_csv_reader": phases["import-fresh"]["rows_per_s"] / reader,
        "import_fresh_vs_pandas": phases["import-fresh"]["rows_per_s"]
        / phases["pandas"]["rows_per_s"],
        "import_update_vs_csv_reader": phases["import-update"]["rows_per_s"] / reader,
        "export_vs_csv_writer_gzip": phases["export-full-gzip"]["rows_per_s"]
        / phases["csv-writer-gzip"]["rows_per_s"],
    }
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "targets": _targets(phases, memory),
        "machine": _machine(),
        "rows": rows,
        "phases": phases,
        "ratios": {name: round(value, 3) for name, value in ratios.items()},
        "peak_rss_mb_by_rows": memory,
    }


OUR_PHASES = ("import-fresh", "import-update", "export-full-gzip")


def _targets(phases: dict[str, dict[str, Any]], memory: dict[str, float]) -> list[dict[str, Any]]:
    """Each target of the benchmark issue: the figure it needs, the one measured, met or not."""
    rate = {name: phase["rows_per_s"] for name, phase in phases.items()}
    peak = max(
        [
            *memory.values(),
            *(phases[name]["peak_rss_mb"] for name in OUR_PHASES),
        ]
    )
    wanted = [
        (
            "fresh import >= 25% of csv.reader (rows/s)",
            rate["import-fresh"],
            0.25 * rate["csv-reader"],
        ),
        ("fresh import >= 1.6x pandas glue (rows/s)", rate["import-fresh"], 1.6 * rate["pandas"]),
        (
            "re-import >= 15% of csv.reader (rows/s)",
            rate["import-update"],
            0.15 * rate["csv-reader"],
        ),
        ("gzip export >= 250k rows/s", rate["export-full-gzip"], 250_000),
        (
            "gzip export >= 60% of csv.writer+gzip (rows/s)",
            rate["export-full-gzip"],
            0.6 * rate["csv-writer-gzip"],
        ),
    ]
    targets = [
        {"target": name, "needed": round(needed), "measured": measured, "met": measured >= needed}
        for name, measured, needed in wanted
    ]
    targets.append(
        {
            "target": "peak RSS < 150 MB, every size and phase",
            "needed": 150,
            "measured": peak,
            "met": peak < 150,
        }
    )
    return targets


def print_table(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(
        f"\n{report['rows']:,} rows on {report['machine']['cpu']} ({report['machine']['cores']} cores), "
        f"Python {report['machine']['python']}, {report['date']}\n\n"
    )
    out.write(f"{'phase':<20}{'rows/s':>12}{'MB/s':>9}{'seconds':>10}{'peak RSS MB':>13}\n")
    for name, phase in report["phases"].items():
        out.write(
            f"{name:<20}{phase['rows_per_s']:>12,}{phase['mb_per_s']:>9}"
            f"{phase['seconds']:>10.2f}{phase['peak_rss_mb']:>13}\n"
        )
    out.write("\nratios (ours / baseline)\n")
    for name, value in report["ratios"].items():
        out.write(f"  {name:<32}{value:>8.2f}\n")
    out.write("\ntargets\n")
    for target in report["targets"]:
        verdict = "met" if target["met"] else "MISSED"
        out.write(
            f"  {target['target']:<48}{target['measured']:>10,} vs {target['needed']:>9,}  {verdict}\n"
        )
    out.write("\npeak RSS of a fresh import by file size\n")
    for size, rss in report["peak_rss_mb_by_rows"].items():
        out.write(f"  {int(size):>10,} rows  {rss:>7} MB\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows in the main run (default 1M)"
    )
    parser.add_argument(
        "--memory-sizes",
        default="100000,1000000",
        help="file sizes for the peak-RSS series (add 5000000 on request)",
    )
    parser.add_argument("--gzip", action="store_true", help="also import the gzip file")
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "work")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "latest.json")
    args = parser.parse_args()
    sizes = [int(size) for size in args.memory_sizes.split(",") if size]
    report = run(args.rows, sizes, args.work, args.gzip)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    sys.stdout.write(f"\nwritten to {args.out}\n")


if __name__ == "__main__":
    main()

"""The README's first command: the example goals, for real, against a local S3 endpoint.

Starts moto's S3 server on 127.0.0.1, puts the example files from
`goals/data/` in the example buckets, then drives the real command line:
validate, scan, run, profiles, groups, segments, history. Everything it
writes goes under `./demo/`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from pathlib import Path

from connector.cli import main as connector
from connector.sources import S3Credentials, s3_client

_DEMO_KEYS = {"CRM_KEY_ID": "demo-key-id", "CRM_SECRET": "demo-secret-key"}


def _step(title: str, *argv: str) -> int:
    sys.stdout.write(f"\n$ connector {' '.join(argv)}    # {title}\n")
    sys.stdout.flush()
    code = connector(list(argv))
    sys.stdout.flush()
    return code


def _credentials(endpoint: str) -> S3Credentials:
    """The example connection's S3 keys, at the local endpoint."""
    return S3Credentials(
        region="eu-west-1",
        endpoint_url=endpoint,
        access_key_id=_DEMO_KEYS["CRM_KEY_ID"],
        secret_access_key=_DEMO_KEYS["CRM_SECRET"],
    )


async def _upload_examples(endpoint: str, data_dir: Path) -> None:
    async with s3_client(_credentials(endpoint)) as s3:
        for bucket in ("crm-exports", "crm-in"):
            await s3.ensure_bucket(bucket)
        files = sorted(data_dir.rglob("*.csv"))  # noqa: ASYNC240 -- a handful of example files
        for path in files:
            key = path.relative_to(data_dir).as_posix()
            await s3.put_object("crm-exports", key, path.read_bytes())
            sys.stdout.write(f"uploaded s3://crm-exports/{key}\n")


async def _show_exports(endpoint: str) -> None:
    import gzip  # noqa: PLC0415 -- only the demo reads exported files back

    async with s3_client(_credentials(endpoint)) as s3:
        async for obj in s3.list_objects("crm-in"):
            sys.stdout.write(f"\ns3://crm-in/{obj.key} ({obj.size} bytes)\n")
            data = b"".join([chunk async for chunk in s3.iter_object("crm-in", obj.key)])
            if obj.key.endswith(".gz"):
                data = gzip.decompress(data)
            sys.stdout.write(data.decode("utf-8", "replace"))


def main() -> int:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 -- a demo-only dependency

    project = Path(__file__).resolve().parents[1]
    goals_dir = project / "goals" if (project / "goals").is_dir() else Path("goals").resolve()
    demo_dir = Path("demo").resolve()
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        os.environ.update(_DEMO_KEYS)
        os.environ["CRM_S3_ENDPOINT"] = endpoint
        os.environ["CONNECTOR_GOALS_DIR"] = str(goals_dir)
        os.environ["CONNECTOR_DATABASE"] = str(demo_dir / "connector.db")
        os.environ.setdefault("CONNECTOR_LOG_FORMAT", "console")
        os.environ.setdefault("CONNECTOR_LOG_LEVEL", "warning")
        sys.stdout.write(
            f"local S3 endpoint (moto) at {endpoint}; store {demo_dir / 'connector.db'}\n"
        )
        asyncio.run(_upload_examples(endpoint, goals_dir / "data"))
        if _step("check the goal files", "validate") != 0:
            return 1
        _step("what the import goal would pick up", "scan", "crm", "nightly-crm")
        _step("how the first rows parse and map", "preview", "crm", "nightly-crm", "--rows", "3")
        run_code = _step("run every goal of the connection once", "run", "crm", "--quiet")
        _step("run again: every file is skipped, nothing is applied twice", "run", "crm", "--quiet")
        _step("a profile, with its groups", "profiles", "find", "customer_id", "C001")
        _step("every profile, as JSON lines", "profiles", "dump", "--json")
        _step("a household", "groups", "get", "household", "H1")
        _step("segments and their members", "segments")
        _step("the run history", "history")
        asyncio.run(_show_exports(endpoint))
        sys.stdout.write(
            f"\nThe first run exited {run_code} (3 = partial: the example files hold "
            "rows that are rejected on purpose; see them above).\n"
        )
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())

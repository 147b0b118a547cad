"""Commands that never reach S3 or run the scheduler start without those libraries.

Each check runs in a fresh interpreter (a real subprocess): this test process
has long since imported everything.
"""

from __future__ import annotations

import json

import pytest
from helpers import python_output

LOADED_ON_USE = (
    "aioboto3",
    "aiobotocore",
    "botocore",
    "aiohttp",
    "apscheduler.schedulers",
    "prometheus_client",
)
"""The S3 library (loaded by the first client) and the daemon's scheduler and metrics."""


def _loaded_after(code: str) -> list[str]:
    probe = (
        f"import json, sys\n{code}\n"
        f"print(json.dumps([name for name in {list(LOADED_ON_USE)!r} if name in sys.modules]))"
    )
    loaded: list[str] = json.loads(python_output(probe)[-1])
    return loaded


def test_the_command_line_loads_neither_s3_nor_the_scheduler() -> None:
    assert _loaded_after("import connector.cli.main") == []


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["validate", "--help"],
        ["history", "--help"],
    ],
)
def test_a_command_that_never_reaches_s3_leaves_the_library_unloaded(command: list[str]) -> None:
    code = (
        "from connector.cli.main import main\n"
        "try:\n"
        f"    main({command!r})\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert _loaded_after(code) == []


def test_making_a_client_loads_the_s3_library() -> None:
    code = (
        "from connector.sources import S3Credentials, s3_client\n"
        "client = s3_client(S3Credentials(endpoint_url='http://127.0.0.1:9'))\n"
        "assert type(client).__name__ == 'S3Client'"
    )
    assert {"aioboto3", "botocore", "aiohttp"} <= set(_loaded_after(code))


def test_the_client_classes_are_still_named_by_the_package() -> None:
    from connector import sources  # noqa: PLC0415 -- the package attribute is the subject
    from connector.sources import s3  # noqa: PLC0415

    assert sources.S3Client is s3.S3Client
    assert sources.MultipartUpload is s3.MultipartUpload
    with pytest.raises(AttributeError, match="no attribute 'S3Nothing'"):
        _ = sources.S3Nothing  # type: ignore[attr-defined]

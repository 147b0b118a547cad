"""File-name tokens (`file_name: {pattern: ...}`), part names, and the S3 key limits.

Unknown tokens and names too long whatever the segment are configuration
errors (`FILE:LINE: message`); a key that only the run can know is too long
fails the run before anything is uploaded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import BUCKET, CONNECTION, Harness, config_problems, save

from connector.config import Destination
from connector.errors import ObjectExistsError
from connector.exports.keys import (
    ObjectKeyError,
    check_key,
    data_key,
    part_key,
    part_number,
    parts_prefix,
)
from connector.exports.model import FileNamePattern
from connector.sources.s3 import MIN_PART_SIZE
from connector.storage import Profile, RunStatus

MOMENT = datetime(2024, 3, 1, 9, 30, 5, tzinfo=UTC)


def pattern(text: str, custom_text: str | None = None, directory: str = "out") -> Destination:
    return Destination(
        bucket="out-bucket",
        directory=directory,
        file_name=FileNamePattern(pattern=text, custom_text=custom_text),
    )


def key_for(
    destination: Destination,
    *,
    moment: datetime = MOMENT,
    segment_name: str = "High value customers",
    gzip: bool = False,
    encrypted: bool = False,
) -> str:
    return data_key(
        destination,
        segment_id="high-value",
        segment_name=segment_name,
        moment=moment,
        gzip=gzip,
        encrypted=encrypted,
        goal_name="nightly",
    )


def goal_with_file_name(file_name: str, *extra: str) -> str:
    """A connection file whose `file_name:` value (a flow mapping or scalar) is on line 6."""
    lines = "".join(f"    {line}\n" for line in extra)
    return (
        "goals:\n"
        "  - type: export-profiles\n"
        "    name: out\n"
        "    destination:\n"
        "      bucket: crm-in\n"
        f"      file_name: {file_name}\n"
        f"{lines}"
        "    columns:\n"
        "      - {header: id, value: profile_id}\n"
    )


# -- tokens ---------------------------------------------------------------------------------


def test_every_token_of_a_pattern_is_replaced_at_run_time() -> None:
    destination = pattern(
        "%DESTINATION%_%SEGMENT_ID%_%SEGMENT_NAME%_%CUSTOM_TEXT%_%DATETIME%_%TIMESTAMP%.csv",
        custom_text="acme",
    )

    assert key_for(destination) == (
        "out/nightly_high-value_High_value_customers_acme_20240301_093005_1709285405.csv"
    )


def test_datetime_and_timestamp_are_the_utc_second_whatever_the_moments_zone() -> None:
    amsterdam = MOMENT.astimezone(timezone(timedelta(hours=1)))

    assert key_for(pattern("%DATETIME%_%TIMESTAMP%"), moment=amsterdam) == (
        "out/20240301_093005_1709285405"
    )


def test_a_pattern_gets_the_content_extensions_and_safe_segment_names() -> None:
    destination = pattern("%SEGMENT_NAME%.csv", directory="feeds/%SEGMENT_ID%")

    assert key_for(destination, segment_name="../../etc/passwd", gzip=True, encrypted=True) == (
        "feeds/high-value/etc_passwd.csv.gz.gpg"
    )


@pytest.mark.parametrize(
    ("file_name", "time_based"),
    [
        ("segment_timestamp", True),
        ("all.csv", False),
        (FileNamePattern(pattern="%DESTINATION%_%DATETIME%.csv"), True),
        (FileNamePattern(pattern="%DESTINATION%_%TIMESTAMP%.csv"), True),
        (FileNamePattern(pattern="%DESTINATION%_latest.csv"), False),
    ],
)
def test_only_a_name_with_the_runs_second_in_it_is_a_new_file_each_run(
    file_name: Any, time_based: bool
) -> None:
    assert Destination(bucket="out-bucket", file_name=file_name).time_based is time_based


def test_the_existing_string_forms_still_load_and_name_as_before() -> None:
    timestamped = Destination(bucket="out-bucket", directory="cdp", file_name="segment_timestamp")
    fixed = Destination(bucket="out-bucket", directory="in", file_name="%SEGMENT_ID%.csv")

    assert key_for(timestamped) == "cdp/High_value_customers_20240301T093005Z.csv"
    assert key_for(fixed) == "in/high-value.csv"


# -- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "extra", "line", "message"),
    [
        (
            '{pattern: "%DESTINATION%_%Y%m%d.csv"}',
            (),
            6,
            "goals[0].destination.file_name.pattern: unknown token '%Y%'; use %SEGMENT_NAME%, "
            "%SEGMENT_ID%, %DESTINATION% (the goal name), %DATETIME% (YYYYMMDD_HHMMSS, UTC), "
            "%TIMESTAMP% (Unix seconds) or %CUSTOM_TEXT%",
        ),
        (
            '{pattern: "%segment_name%.csv"}',
            (),
            6,
            "goals[0].destination.file_name.pattern: unknown token '%segment_name%'; use "
            "%SEGMENT_NAME%, %SEGMENT_ID%, %DESTINATION% (the goal name), "
            "%DATETIME% (YYYYMMDD_HHMMSS, UTC), %TIMESTAMP% (Unix seconds) or %CUSTOM_TEXT%",
        ),
        (
            '{pattern: "100% sure.csv"}',
            (),
            6,
            "goals[0].destination.file_name.pattern: '100% sure.csv' has a '%' outside a token; "
            "tokens are written like %DATETIME%, and a literal '%' is not allowed in a file "
            "name pattern",
        ),
        (
            '{pattern: "%CUSTOM_TEXT%_%DATETIME%.csv"}',
            (),
            6,
            "goals[0].destination.file_name.pattern: the pattern uses %CUSTOM_TEXT%: "
            "set `custom_text` beside it",
        ),
        (
            '{pattern: "%DATETIME%.csv", custom_text: acme}',
            (),
            6,
            "goals[0].destination.file_name.custom_text: custom_text is set but the pattern "
            "has no %CUSTOM_TEXT%",
        ),
        (
            '{pattern: "%CUSTOM_TEXT%.csv", custom_text: "a/b"}',
            (),
            6,
            "goals[0].destination.file_name.custom_text: custom_text 'a/b' may contain only "
            "letters, digits and ! _ . * ' ( ) -, and not only dots",
        ),
        (
            '{pattern: "../%DATETIME%.csv"}',
            (),
            6,
            "goals[0].destination.file_name.pattern: '../%DATETIME%.csv' must not contain '..'",
        ),
        (
            '{pattern: "exports/"}',
            (),
            6,
            "goals[0].destination.file_name.pattern: 'exports/' must end with a file name, not '/'",
        ),
        (
            "{pattern: x.csv, name: y}",
            (),
            6,
            "unknown key 'name' in goals[0].destination.file_name",
        ),
        (
            "[a, b]",
            (),
            6,
            "goals[0].destination.file_name: file_name is segment_timestamp, a fixed name, "
            "or {pattern: ..., custom_text: ...}",
        ),
        (
            f'{{pattern: "{"n" * 240}_%DATETIME%.csv"}}',
            (),
            6,
            "goals[0].destination.file_name.pattern: the file name is at least 260 bytes with "
            "its suffixes; file names are limited to 255 bytes",
        ),
        (
            f'{{pattern: "{"n" * 243}.csv"}}',
            ("max_rows_per_file: 1000",),
            6,
            "goals[0].destination.file_name.pattern: the file name is at least 256 bytes with "
            "its suffixes; file names are limited to 255 bytes",
        ),
        (
            f'"{"n" * 250}.csv"',
            ("manifest: true",),
            6,
            "goals[0].destination.file_name: the file name is at least 268 bytes with its "
            "suffixes; file names are limited to 255 bytes",
        ),
    ],
    ids=[
        "strftime-code",
        "lower-case-token",
        "lone-percent",
        "custom-text-missing",
        "custom-text-unused",
        "custom-text-slash",
        "dot-dot",
        "no-file-name",
        "unknown-key",
        "not-a-name",
        "too-long-with-datetime",
        "too-long-with-part-number",
        "fixed-name-too-long-with-manifest",
    ],
)
def test_a_file_name_that_can_never_work_is_a_config_error_on_its_line(
    tmp_path: Path, file_name: str, extra: tuple[str, ...], line: int, message: str
) -> None:
    problems = config_problems(tmp_path, goal_with_file_name(file_name, *extra))

    assert problems == [f"crm.yaml:{line}: {message}"]


def test_a_directory_that_makes_every_key_too_long_is_a_config_error(tmp_path: Path) -> None:
    problems = config_problems(
        tmp_path,
        f"""
        goals:
          - type: export-profiles
            name: out
            destination:
              bucket: crm-in
              directory: "{"d" * 210}/{"e" * 210}/{"f" * 210}/{"g" * 210}/{"h" * 210}"
              file_name: "%SEGMENT_ID%.csv"
            columns:
              - {{header: id, value: profile_id}}
        """,
    )

    assert problems == [
        "crm.yaml:4: goals[0].destination: the object key (directory and file name) is at "
        "least 1060 bytes; S3 keys are limited to 1024 bytes"
    ]


# -- part names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "number", "expected"),
    [
        ("out/profiles.csv", 1, "out/profiles_part0001.csv"),
        ("out/profiles.csv.gz.gpg", 12, "out/profiles_part0012.csv.gz.gpg"),
        ("out/Profiles.CSV.GZ", 2, "out/Profiles_part0002.CSV.GZ"),
        ("everyone", 3, "everyone_part0003"),
        ("v1.2", 1, "v1.2_part0001"),
        ("a.b/x.tsv.gz", 10000, "a.b/x_part10000.tsv.gz"),
        ("out/High_value_20240301T093005Z.csv", 7, "out/High_value_20240301T093005Z_part0007.csv"),
    ],
)
def test_a_part_number_goes_before_the_file_type_extensions(
    key: str, number: int, expected: str
) -> None:
    assert part_key(key, number) == expected


@pytest.mark.parametrize(
    ("candidate", "number"),
    [
        ("out/p_part0003.csv.gz", 3),
        ("out/p_part12345.csv.gz", 12345),
        ("out/p_part0003.csv", None),
        ("out/p_part03.csv.gz", None),
        ("out/p_partx.csv.gz", None),
        ("out/other_part0003.csv.gz", None),
        ("out/sub/p_part0003.csv.gz", None),
    ],
)
def test_part_number_recognises_only_the_parts_of_the_same_export(
    candidate: str, number: int | None
) -> None:
    assert parts_prefix("out/p.csv.gz") == "out/p_part"
    assert part_number("out/p.csv.gz", candidate) == number


# -- key limits at run time -------------------------------------------------------------------


def test_check_key_accepts_a_key_and_name_at_their_limits() -> None:
    key = "d" * 256 + "/" + "d" * 255 + "/" + "d" * 255 + "/" + "n" * 251 + ".csv"

    assert len(key.encode()) == 1024
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("d/" + "n" * 252 + ".csv", r"the file name 'n+…n+\.csv' is 256 bytes; .* limited to 255"),
        ("d/" + "é" * 126 + ".csv", r"the file name 'é+…é+\.csv' is 256 bytes"),
        ("/".join(["d" * 250] * 5) + "/x.csv", r"the object key 'd+…d+/x\.csv' is 1260 bytes"),
    ],
    ids=["name-too-long", "name-counted-in-utf8-bytes", "key-too-long"],
)
def test_check_key_refuses_what_s3_or_a_partners_disk_would(key: str, message: str) -> None:
    with pytest.raises(ObjectKeyError, match=message):
        check_key(key)


# -- end to end -------------------------------------------------------------------------------


def export_goal(file_name: Any, **settings: Any) -> dict[str, Any]:
    return {
        "type": "export-profiles",
        "name": "nightly",
        "destination": {"bucket": BUCKET, "directory": "out", "file_name": file_name},
        "columns": [
            {"header": "id", "value": "profile_id"},
            {"header": "email", "property": "email"},
        ],
        **settings,
    }


async def read_text(harness: Harness, key: str) -> str:
    s3 = await harness.s3()
    return b"".join([chunk async for chunk in s3.iter_object(BUCKET, key)]).decode()


async def test_a_time_pattern_writes_a_new_file_each_run_named_by_its_tokens(
    harness: Harness,
) -> None:
    file_name = {"pattern": "%DESTINATION%_%CUSTOM_TEXT%_%DATETIME%_%TIMESTAMP%.csv"}
    harness.write_connection(export_goal({**file_name, "custom_text": "acme"}))
    save(harness, Profile("p1", {"email": ["a@x"]}))
    before = datetime.now(UTC).replace(microsecond=0)

    await harness.run()
    await harness.run()

    keys = sorted(await harness.listed("out/"))
    assert len(keys) == 2
    stamps = []
    for key in keys:
        match = re.fullmatch(r"out/nightly_acme_(\d{8}_\d{6})_(\d{10})\.csv", key)
        assert match, key
        moment = datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
        assert int(moment.timestamp()) == int(match.group(2))
        stamps.append(moment)
        assert await read_text(harness, key) == "id,email\np1,a@x\n"
    assert before <= stamps[0] < stamps[1] <= datetime.now(UTC)


async def test_a_pattern_without_time_tokens_is_replaced_each_run(harness: Harness) -> None:
    harness.write_connection(export_goal({"pattern": "%DESTINATION%_latest.csv"}))
    save(harness, Profile("p1", {"email": ["a@x"]}))
    await harness.run()
    save(harness, Profile("p2", {"email": ["b@x"]}))

    await harness.run()

    assert sorted(await harness.listed("out/")) == ["out/nightly_latest.csv"]
    assert await read_text(harness, "out/nightly_latest.csv") == "id,email\np1,a@x\np2,b@x\n"


async def test_a_segment_name_that_makes_the_name_too_long_fails_the_run_and_uploads_nothing(
    harness: Harness,
) -> None:
    segments = {
        "segments": [
            {"id": "long", "name": "N" * 300, "where": {"property": "email", "exists": True}}
        ]
    }
    (harness.goals_dir / "segments.yaml").write_text(yaml.safe_dump(segments), encoding="utf-8")
    harness.write_connection(
        export_goal({"pattern": "%SEGMENT_NAME%_%DATETIME%.csv"}, segment="long", manifest=True)
    )
    save(harness, Profile("p1", {"email": ["a@x"]}))

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.FAILURE
    assert re.search(
        r"the file name 'N+…N+_\d{8}_\d{6}\.csv' is 320 bytes", outcome.record.error or ""
    )
    assert await harness.listed("out/") == {}
    assert harness.store.export_watermark(CONNECTION, "nightly") is None


# -- never overwrite a partner's file ------------------------------------------------------


async def test_a_timestamped_name_already_taken_moves_to_the_next_free_second(
    harness: Harness,
) -> None:
    harness.write_connection(
        export_goal({"pattern": "%DESTINATION%_%TIMESTAMP%.csv"}, manifest=True)
    )
    save(harness, Profile("p1", {"email": ["a@x"]}))
    now = int(datetime.now(UTC).timestamp())
    theirs = {
        f"out/nightly_{second}.csv": b"the partner's own file\n"
        for second in range(now - 1, now + 3)
    }
    await harness.put(theirs)

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    listed = await harness.listed("out/")
    [ours] = [key for key in listed if key not in theirs and key.endswith(".csv")]
    assert int(re.fullmatch(r"out/nightly_(\d+)\.csv", ours).group(1)) >= now + 3  # type: ignore[union-attr]
    assert sorted(key for key in listed if key not in theirs) == [ours, f"{ours}.manifest.json"]
    for key, data in theirs.items():
        assert (await read_text(harness, key)).encode() == data


async def test_a_conditional_write_over_an_existing_object_fails_clearly_and_changes_nothing(
    harness: Harness,
) -> None:
    s3 = await harness.s3()
    await s3.put_object(BUCKET, "out/taken.csv", b"theirs\n")
    with pytest.raises(ObjectExistsError) as small:
        await s3.put_object(BUCKET, "out/taken.csv", b"ours\n", if_none_match=True)
    assert "already exists; it was not overwritten" in str(small.value)
    assert str(small.value).startswith(f"s3://{BUCKET}/out/taken.csv: ")

    big = b"x" * (MIN_PART_SIZE + 1024)  # a real multipart upload, completed conditionally
    with pytest.raises(ObjectExistsError):
        async with s3.open_upload(BUCKET, "out/taken.csv", if_none_match=True) as upload:
            await upload.write(big)
    assert await read_text(harness, "out/taken.csv") == "theirs\n"
    uploads = await s3._s3.list_multipart_uploads(Bucket=BUCKET)
    assert uploads.get("Uploads", []) == []  # aborted: no parts left to pay for
    assert await s3.object_exists(BUCKET, "out/taken.csv")
    assert not await s3.object_exists(BUCKET, "out/free.csv")

"""Export object keys: naming styles, folder macros, and keys no segment name can escape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.config import Destination
from connector.exports.keys import clean_key, data_key, manifest_key, safe_name

MOMENT = datetime(2024, 3, 1, 9, 30, 5, tzinfo=UTC)


def key_for(
    destination: Destination,
    *,
    segment_id: str = "high-value",
    segment_name: str = "High value customers",
    gzip: bool = False,
    encrypted: bool = False,
) -> str:
    return data_key(
        destination,
        segment_id=segment_id,
        segment_name=segment_name,
        moment=MOMENT,
        gzip=gzip,
        encrypted=encrypted,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("High value customers", "High_value_customers"),
        ("Müller & Söhne", "Muller_Sohne"),
        ("../../etc/passwd", "etc_passwd"),
        ("a..b/c", "a_b_c"),
        ("v1.2-final_list", "v1.2-final_list"),
        ("tab\there\x00", "tab_here"),
        ("..", "fallback"),
        ("///", "fallback"),
        ("", "fallback"),
    ],
)
def test_safe_name_keeps_readable_ascii_and_drops_everything_that_could_move_a_key(
    name: str, expected: str
) -> None:
    assert safe_name(name, "fallback") == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("/a//b/", "a/b"),
        ("a/./b/../c", "a/b/c"),
        ("a\x00b/\x1fc\x7f", "ab/c"),
        ("../../x.csv", "x.csv"),
    ],
)
def test_clean_key_leaves_no_traversal_leading_slash_empty_part_or_control_character(
    key: str, expected: str
) -> None:
    assert clean_key(key) == expected


def test_clean_key_refuses_a_key_with_nothing_left() -> None:
    with pytest.raises(ValueError, match="no usable object key"):
        clean_key("/.././/")


def test_segment_timestamp_names_the_file_after_the_segment_and_the_utc_second() -> None:
    destination = Destination(bucket="out-bucket", directory="cdp/", file_name="segment_timestamp")

    assert key_for(destination) == "cdp/High_value_customers_20240301T093005Z.csv"
    assert key_for(destination, gzip=True, encrypted=True) == (
        "cdp/High_value_customers_20240301T093005Z.csv.gz.gpg"
    )


def test_segment_timestamp_falls_back_to_the_segment_id_when_the_name_has_nothing_usable() -> None:
    destination = Destination(bucket="out-bucket")

    assert key_for(destination, segment_name="???") == "high-value_20240301T093005Z.csv"


def test_directory_macros_are_replaced_by_safe_segment_name_and_id() -> None:
    destination = Destination(
        bucket="out-bucket",
        directory="exports/%SEGMENT_NAME%/%SEGMENT_ID%",
        file_name="segment_timestamp",
    )

    assert key_for(destination, segment_name="../Top/../../10%") == (
        "exports/Top_10/high-value/Top_10_20240301T093005Z.csv"
    )


@pytest.mark.parametrize(
    ("file_name", "gzip", "encrypted", "expected"),
    [
        ("partner.csv", False, False, "in/partner.csv"),
        ("partner.csv", True, False, "in/partner.csv.gz"),
        ("partner.csv", True, True, "in/partner.csv.gz.gpg"),
        ("partner.csv.gz", True, False, "in/partner.csv.gz"),
        ("partner.CSV.GZ.GPG", True, True, "in/partner.CSV.GZ.GPG"),
        ("%SEGMENT_ID%.txt", False, False, "in/high-value.txt"),
    ],
)
def test_a_fixed_file_name_is_kept_and_only_missing_content_extensions_are_added(
    file_name: str, gzip: bool, encrypted: bool, expected: str
) -> None:
    destination = Destination(bucket="out-bucket", directory="in", file_name=file_name)

    assert key_for(destination, gzip=gzip, encrypted=encrypted) == expected


def test_the_manifest_sits_beside_its_data_file() -> None:
    assert manifest_key("cdp/a_20240301T093005Z.csv.gz") == (
        "cdp/a_20240301T093005Z.csv.gz.manifest.json"
    )

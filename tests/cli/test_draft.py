"""`connector draft`: the printed goal, placed as the README says, validates and previews cleanly.

Each sample of the corpus (separators, encodings, byte-order marks, dates,
quoted newlines, gzip, no header) is drafted from a local path, saved as the
README says, checked with the real `validate`, and previewed from the
session's moto S3 with zero rejects. The `--connection` form drafts from
`s3://` with the connection's storage settings and is pasted into the
shipped example connection file.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import BUCKET, Harness, gzipped
from jsonschema import Draft202012Validator

from connector.cli import main
from connector.config.yaml_source import load_yaml
from connector.imports.draft_sample import read_local_sample, read_s3_sample
from connector.sources import S3Client, S3Credentials

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "goals"
DEMO_FILE = EXAMPLES / "data" / "daily" / "customers-2026-11-01.csv"


@pytest.fixture
def workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, reset_moto: None
) -> Path:
    """An empty goals folder, a store path, and the S3 variables the drafted storage block uses."""
    for name in ("CONNECTOR_CONFIG", "CONNECTOR_GOALS_DIR", "CONNECTOR_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "goals"
    folder.mkdir()
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(folder))
    monkeypatch.setenv("CONNECTOR_DATABASE", str(tmp_path / "connector.db"))
    monkeypatch.setenv("CONNECTOR_LOG_LEVEL", "warning")
    monkeypatch.setenv("S3_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("S3_KEY_ID", "testing")
    monkeypatch.setenv("S3_SECRET", "testing")
    return folder


def upload(endpoint: str, key: str, data: bytes) -> None:
    """Put one object into the test bucket through the connector's own S3 client."""

    async def put() -> None:
        credentials = S3Credentials(
            region="eu-west-1",
            endpoint_url=endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        )
        async with S3Client(credentials) as s3:
            await s3.ensure_bucket(BUCKET)
            await s3.put_object(BUCKET, key, data)

    asyncio.run(put())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_saved(draft: str) -> str:
    """The draft as the README says to save it: storage block uncommented, bucket filled in."""
    lines = []
    for line in draft.splitlines():
        text = line[2:] if line.startswith(("# storage:", "#   ")) else line
        lines.append(text.replace("bucket: change-me", f"bucket: {BUCKET}"))
    return "\n".join(lines) + "\n"


def schema_errors(path: Path) -> list[str]:
    """What an editor holding the shipped JSON Schema flags in a saved draft."""
    schema = json.loads((EXAMPLES / "connection.schema.json").read_text("utf-8"))
    data = json.loads(json.dumps(load_yaml(path, dict(os.environ)).data))
    return [error.message for error in Draft202012Validator(schema).iter_errors(data)]


def previewed_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if re.match(r"line [0-9]+: ", line)]


CORPUS: dict[str, tuple[bytes, int]] = {
    "customers-2026-11-01.csv": (DEMO_FILE.read_bytes(), 7),
    "latin1.csv": (
        "klant_nr;naam;stad;bedrag\nK1;Zoë Müller;Köln;12,50\nK2;Ångström;Malmö;3,10\n"
        "K3;Ærø;Århus;0,99\n".encode("latin-1"),
        3,
    ),
    "bom.csv": (
        codecs.BOM_UTF8 + b"customer_id,name,joined\nC1,Ann,2024-03-01\nC2,Bob,2024-03-02\n",
        2,
    ),
    "tab-crlf.tsv": (
        b'customer_id\tname\tpoints\r\nC1\tAnna, Jr.\t1\r\nC2\t"Bram\r\nB."\t2\r\n'
        b"C3\tCarla\t3\r\nC4\tDirk\t4\r\n",
        4,
    ),
    "single-quotes.csv": (
        b"customer_id;name;note;points\nC1;'Dirk; Jr.';'he said ''hi''';1\n"
        b"C2;'two\nline';'a \"double\"\nquote';2\nC3;Eve;ok;3\n",
        3,
    ),
    "dates.csv": (
        b"Customer ID,Birth Date,Signed Up,Last Seen,Visit Day\n"
        b"C1,17-05-1985,01/07/2024 14:30,2024-03-01T09:30:00+01:00,01.02.2024\n"
        b"C2,02-11-1990,15/01/2024 00:15,2024-07-01T14:30:00,03.04.2024\n",
        2,
    ),
    "pipes.txt": (
        b"email|firstName|tags|score\na@x.org|Ann|news;sport|1.5\nb@x.org|Bob|sport;travel|2\n"
        b"c@x.org|Cy||3.25\n",
        3,
    ),
    "headerless.csv": (b"C1,12.50,2024-01-01\nC2,3.10,2024-02-01\nC3,7,2024-02-02\n", 3),
    "packed-2026-11-01.csv.gz": (gzipped(DEMO_FILE.read_bytes()), 7),
    "tricky-names.csv": (
        'id,yes,"Name: full","# hash",naïve,Straße,Email,"email ","multi\nline",null\n'
        "1,ja,Ann Lee,#1,x,y,a@x.org,A@x.org,one,\n"
        '2,nee,Bob,#2,x,y,b@x.org,B@x.org,"two\nlines",~\n'.encode(),
        2,
    ),
    "only-ids.csv": (b"customer_id\nC1\nC2\n", 2),
    "utf16.csv": ("id;naam\nA1;Łukasz\nA2;Zoë\n".encode("utf-16"), 2),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_drafted_connection_file_validates_and_previews_every_sample_row_cleanly(
    name: str,
    workspace: Path,
    tmp_path: Path,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, rows = CORPUS[name]
    sample = tmp_path / name
    sample.write_bytes(data)
    upload(moto_endpoint, f"in/{name}", data)

    code, draft, err = cli(capsys, "draft", str(sample))

    assert code == 0, err
    document = yaml.safe_load(draft)
    connection_id = document["id"]
    [goal] = document["goals"]
    assert f"Save as {workspace}/{connection_id}.yaml" in draft
    saved = workspace / f"{connection_id}.yaml"
    saved.write_text(as_saved(draft), "utf-8")
    code, out, err = cli(capsys, "validate")
    assert code == 0, f"{err}\n{draft}"
    assert draft.startswith("# yaml-language-server: $schema=./connection.schema.json\n")
    assert schema_errors(saved) == []
    code, out, err = cli(
        capsys, "preview", connection_id, goal["name"], "--file", f"in/{name}", "--rows", "50"
    )
    assert code == 0, f"{err}\n{draft}"
    assert "rejected" not in out, f"{out}\n{draft}"
    assert len(previewed_lines(out)) == rows, out
    assert all(line.endswith("-> new profile") for line in previewed_lines(out)), out


def test_the_draft_names_what_it_found_and_why(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tmp_path / "dates.csv"
    sample.write_bytes(CORPUS["dates.csv"][0])

    code, draft, _err = cli(capsys, "draft", str(sample))

    assert code == 0
    goal = yaml.safe_load(draft)["goals"][0]
    assert goal["match"] == {
        "column": "Customer ID",
        "property": "customer_id",
        "create_missing": True,
    }
    mappings = {m["column"]: m for m in goal["mappings"]}
    assert mappings["Birth Date"] == {
        "column": "Birth Date",
        "property": "birth_date",
        "rule": "set",
        "type": "date",
    }
    assert goal["format"]["date_format"] == "%d-%m-%Y"
    assert mappings["Signed Up"]["type"] == "datetime"
    assert mappings["Signed Up"]["date_format"] == "%d/%m/%Y %H:%M"
    assert mappings["Last Seen"]["date_format"] == "iso8601"
    assert mappings["Visit Day"]["date_format"] == "%d.%m.%Y"
    visit = next(line for line in draft.splitlines() if "column: Visit Day" in line)
    assert "CHECK: AMBIGUOUS: every value reads as %d.%m.%Y and as %m.%d.%Y" in visit
    assert "(e.g. 01.02.2024, 03.04.2024)" in visit
    birth = next(line for line in draft.splitlines() if "date_format: '%d-%m-%Y'" in line)
    assert "used by Birth Date" in birth
    assert "CHECK: date-times without an offset are read in this zone" in draft


def test_amounts_are_flagged_as_sum_candidates_and_lists_as_add_candidates(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, draft, _err = cli(capsys, "draft", str(DEMO_FILE))

    assert code == 0
    lines = {
        re.search(r"column: (\w+)", line)[1]: line  # type: ignore[index]
        for line in draft.splitlines()
        if "column: " in line and "property" in line
    }
    assert "type: number" in lines["spent"]
    assert "a `sum` candidate" in lines["spent"]
    assert "consider rule add" in lines["interests"]
    assert "6 of 7 values are numbers, not 'abc': kept as text" in lines["points"]
    format_ = yaml.safe_load(draft)["goals"][0]["format"]
    assert format_["field_separator"] == ";"
    assert format_["decimal_separator"] == ","
    assert format_["multi_value_separator"] == "|"


def test_with_a_connection_an_s3_sample_is_read_with_its_storage_and_the_goal_pasted_validates(
    tmp_path: Path, moto_endpoint: str, reset_moto: None
) -> None:
    """The shipped example file, its storage pointed at moto; the draft is pasted at its end."""
    harness = Harness(tmp_path, moto_endpoint)
    shutil.rmtree(harness.goals_dir)
    shutil.copytree(EXAMPLES, harness.goals_dir)
    asyncio.run(_put(harness, "daily/customers-2026-11-01.csv", DEMO_FILE.read_bytes()))
    env = {"CRM_S3_ENDPOINT": moto_endpoint, "CRM_KEY_ID": "testing", "CRM_SECRET": "testing"}

    drafted = harness.cli(
        "draft", f"s3://{BUCKET}/daily/customers-2026-11-01.csv", "--connection", "crm", **env
    )

    assert drafted.returncode == 0, drafted.stderr
    assert "Paste at the end of `goals:` in crm.yaml (connection crm)" in drafted.stdout
    assert "`connector preview crm customers`" in drafted.stdout
    readme = readme_draft_example()
    assert (
        readme[0]
        == f"# connector draft s3://{BUCKET}/daily/customers-2026-11-01.csv --connection crm"
    )
    printed = drafted.stdout.splitlines()
    [consent] = [line for line in printed if "column: consent" in line]
    assert "CHECK: consent for this connection is read from consented_objectives" in consent
    assert [line for line in readme[1:] if line not in printed] == [
        "      # ... one line per column"
    ]
    crm = harness.goals_dir / "crm.yaml"
    crm.write_text(crm.read_text("utf-8") + drafted.stdout, "utf-8")
    validated = harness.cli("validate", **env)
    assert validated.returncode == 0, validated.stderr
    assert "crm.yaml: ok" in validated.stdout
    assert "2 import, 1 export" in validated.stdout
    goal = yaml.safe_load(crm.read_text("utf-8").replace("${", "$"))["goals"][-1]
    assert goal["source"] == {
        "bucket": BUCKET,
        "prefix": "daily/",
        "files": ["customers-*.csv"],
    }
    previewed = harness.cli("preview", "crm", "customers", "--rows", "50", **env)
    assert previewed.returncode == 0, previewed.stderr
    assert previewed.stdout.startswith("file daily/customers-2026-11-01.csv\n")
    assert "rejected" not in previewed.stdout
    assert len(previewed_lines(previewed.stdout)) == 7


def readme_draft_example() -> list[str]:
    """The README's example output of `connector draft`, line by line."""
    text = (ROOT / "README.md").read_text("utf-8")
    [block] = [
        b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "connector draft s3:" in b
    ]
    return block.splitlines()


async def _put(harness: Harness, key: str, data: bytes) -> None:
    await harness.put({key: data})
    await harness.aclose()


def test_goal_names_and_match_normalisation_follow_the_connection(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "shop.yaml").write_text(
        f"""\
id: shop
storage: {{endpoint_url: "${{S3_ENDPOINT}}", access_key_id: testing, secret_access_key: testing}}
goals:
  - type: import-profiles
    name: customers
    source: {{bucket: {BUCKET}, prefix: in/}}
    match: {{column: customer_id, property: customer_id, normalize: lowercase}}
    map_all_columns: true
""",
        "utf-8",
    )
    sample = tmp_path / "customers.csv"
    sample.write_bytes(b"customer_id,email\nC1,a@x.org\nC2,b@x.org\n")

    code, draft, err = cli(capsys, "draft", str(sample), "--connection", "shop")

    assert code == 0, err
    assert "  - type: import-profiles\n    name: customers-2\n" in draft
    assert f"source: {{bucket: {BUCKET}, prefix: '', files: [customers.csv]}}" in draft
    assert "CHECK: the bucket of this connection's other import goal" in draft
    assert "normalize: lowercase" in draft
    shop = workspace / "shop.yaml"
    shop.write_text(shop.read_text("utf-8") + draft, "utf-8")
    code, _out, err = cli(capsys, "validate")
    assert code == 0, err

    (workspace / "customers.yaml").write_text("not a connection: [", "utf-8")
    code, whole, err = cli(capsys, "draft", str(sample))
    assert code == 0, err
    assert yaml.safe_load(whole)["id"] == "customers-2"
    assert f"# Save as {workspace}/customers-2.yaml," in whole


def test_only_the_first_mebibytes_of_a_large_file_are_read(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows after the first MiB would make `spent` text and `customer_id` repeat: unseen."""
    head = "customer_id;spent\n" + "".join(f"C{i:07d};{i % 1000},50\n" for i in range(300_000))
    tail = "".join(f"C0000001;n/a {i}\n" for i in range(300_000))
    sample = tmp_path / "big.csv"
    sample.write_text(head + tail, "utf-8")
    assert len(head) > 4 << 20

    code, draft, err = cli(capsys, "draft", str(sample), "--sample-mib", "2")

    assert code == 0, err
    size = sample.stat().st_size / (1 << 20)
    assert f"read the first 2.0 MiB of {size:.1f} MiB;" in draft
    goal = yaml.safe_load(draft)["goals"][0]
    assert goal["match"]["column"] == "customer_id"
    assert goal["mappings"] == [
        {"column": "spent", "property": "spent", "rule": "set", "type": "number"}
    ]


async def test_an_s3_sample_stops_downloading_after_the_limit(
    moto_endpoint: str, reset_moto: None, tmp_path: Path
) -> None:
    harness = Harness(tmp_path, moto_endpoint)
    data = b"customer_id,note\n" + b"".join(b"C%07d,%s\n" % (i, b"x" * 40) for i in range(250_000))
    await harness.put({"in/big.csv": data})
    await harness.aclose()

    sample = await read_s3_sample(harness.credentials, BUCKET, "in/big.csv", 1 << 20)

    assert len(data) > 10 << 20
    assert sample.truncated
    assert sample.data == data[: 1 << 20]
    assert sample.read == 1 << 20
    assert (sample.bucket, sample.key) == (BUCKET, "in/big.csv")


def test_unknown_samples_and_connections_are_one_clear_error(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, "draft", str(tmp_path / "missing.csv"))
    assert (code, err) == (1, f"error: sample file {tmp_path / 'missing.csv'} does not exist\n")

    (tmp_path / "empty.csv").write_bytes(b"")
    code, _out, err = cli(capsys, "draft", str(tmp_path / "empty.csv"))
    assert (code, err) == (1, f"error: sample {tmp_path / 'empty.csv'} is empty\n")

    code, _out, err = cli(capsys, "draft", str(DEMO_FILE), "--connection", "nope")
    assert code == 4  # not found
    assert "no connection 'nope'" in err

    code, _out, err = cli(capsys, "draft", "s3://only-a-bucket")
    assert (code, err) == (1, "error: 's3://only-a-bucket' is not an s3://BUCKET/KEY URL\n")


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["draft", "--help"])

    out = capsys.readouterr().out
    assert "connector draft s3://crm-exports/daily/customers-2026-11-01.csv --connection crm" in out
    assert "--sample-mib N" in out


def test_a_gzip_sample_is_inflated_only_up_to_the_limit(tmp_path: Path) -> None:
    rows = b"".join(b"C%07d,%d\n" % (i, i) for i in range(400_000))
    sample = tmp_path / "big.csv.gz"
    sample.write_bytes(gzipped(b"customer_id,points\n" + rows))

    read = read_local_sample(sample, 1 << 20)

    assert read.compressed
    assert read.truncated
    assert len(read.data) == 1 << 20
    assert read.data.startswith(b"customer_id,points\nC0000000,0\n")


def test_a_drafted_goal_reports_ragged_records(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tmp_path / "ragged.csv"
    sample.write_bytes(b"customer_id,points\nC1,1\nC2,2,extra\nC3,3\n")

    code, draft, _err = cli(capsys, "draft", str(sample))

    assert code == 0
    assert (
        "    # CHECK: 1 sampled record(s) have another number of fields than the header "
        "(data records 2); the import rejects them\n"
    ) in draft


async def test_without_a_connection_an_s3_sample_is_read_with_the_aws_default_chain(
    tmp_path: Path, moto_endpoint: str, reset_moto: None
) -> None:
    harness = Harness(tmp_path, moto_endpoint)
    await harness.put({"exports/2026/customers_20261101.csv.gz": gzipped(DEMO_FILE.read_bytes())})
    await harness.aclose()

    drafted = harness.cli(
        "draft",
        f"s3://{BUCKET}/exports/2026/customers_20261101.csv.gz",
        AWS_ENDPOINT_URL=moto_endpoint,
    )
    missing = harness.cli("draft", f"s3://{BUCKET}/nope.csv", AWS_ENDPOINT_URL=moto_endpoint)

    assert drafted.returncode == 0, drafted.stderr
    assert "read the whole file (" in drafted.stdout
    assert ", gzip; 7 records sampled." in drafted.stdout
    goal = yaml.safe_load(drafted.stdout)["goals"][0]
    assert goal["name"] == "customers"
    assert goal["source"] == {
        "bucket": BUCKET,
        "prefix": "exports/2026/",
        "files": ["customers_*.csv.gz"],
    }
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ")
    assert "nope.csv" in missing.stderr
    assert "Traceback" not in missing.stderr

"""The delimited-file connector on real files: the acceptance suite over a copy of the sample HR export (by
path and as pasted content), each kind of bad file with its exact message, encodings and delimiters, groups
as entitlements, and a 100,000-row file listed in flat memory."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest

from connectors import registry
from connectors.csv.connector import MAX_CONTENT_CHARS, _Seen
from connectors.csv.connector import connector as csv_connector
from connectors.sdk import ConfigError, ConnectorError, ObjectNotFound
from connectors.testing import ConnectorAcceptanceSuite, connection_error

SAMPLE = Path(csv_connector.folder) / "sample" / "people.csv"
HEADER = "employeeId,email,displayName,department,status,groups\n"


def write(folder: Path, text: str, name: str = "people.csv", encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def by_path(path: Path, **items) -> dict:
    return {"path": str(path), "identityColumn": "employeeId", "groupsColumn": "groups", **items}


def accounts(config: dict) -> dict[str, dict]:
    outputs, _ = csv_connector.invoke("std:account:list", config)
    return {o["identity"]: o for o in outputs}


def failure(config: dict, command: str = "std:account:list", input: dict | None = None) -> str:
    with pytest.raises(ConnectorError) as caught:
        csv_connector.invoke(command, config, input)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture
def sample(tmp_path) -> Path:
    return Path(shutil.copy(SAMPLE, tmp_path / "people.csv"))


# -- the acceptance suite ------------------------------------------------------------------------------


class TestCsvAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return csv_connector

    @pytest.fixture
    def good_config(self, sample):
        return by_path(sample, nameColumn="displayName")

    @pytest.fixture
    def bad_configs(self, good_config, tmp_path):
        return {
            "missing file": {**good_config, "path": str(tmp_path / "nowhere.csv")},
            "relative path": {**good_config, "path": "people.csv"},
            "wrong identity column": {**good_config, "identityColumn": "employee_id"},
            "wrong delimiter": {**good_config, "delimiter": ";"},
            "empty file": {**good_config, "path": str(write(tmp_path, "", "empty.csv"))},
            "path and content": {**good_config, "content": HEADER},
        }


class TestCsvContentAcceptance(TestCsvAcceptance):
    """The same file pasted into the connection instead of named by path."""

    @pytest.fixture
    def good_config(self):
        return {
            "connectionOption": "content",
            "content": SAMPLE.read_text("utf-8"),
            "identityColumn": "employeeId",
            "nameColumn": "displayName",
            "groupsColumn": "groups",
        }

    @pytest.fixture
    def bad_configs(self, good_config):
        return {
            "wrong identity column": {**good_config, "identityColumn": "employee_id"},
            "only a header with another delimiter": {**good_config, "content": HEADER.replace(",", "|")},
            "empty content": {**good_config, "content": "\n\n"},
        }


def test_the_connector_is_built_in_with_icon_docs_and_example():
    assert registry.get("csv") is csv_connector
    spec = csv_connector.spec
    assert spec.label == "Delimited file (CSV)" and not spec.warnings
    assert spec.icon is not None and spec.icon.name == "icon.svg" and spec.docs.name == "README.md"
    assert spec.local_path_keys == ["path"] and spec.secret_keys == []
    assert not spec.supports_stateful
    assert not any(
        spec.supports(c) for c in ("std:account:create", "std:account:update", "std:account:delete")
    )
    csv_connector.validate_config(spec.example_config)


# -- what a file becomes -----------------------------------------------------------------------------


def test_rows_are_accounts_with_every_column_and_empty_cells_left_out(sample):
    listed = accounts(by_path(sample, nameColumn="displayName"))
    assert len(listed) == 12
    leaver = listed["E1007"]
    assert leaver["key"] == {"simple": {"id": "E1007"}}
    assert leaver["attributes"] == {
        "employeeId": "E1007",
        "email": "john.vonneumann@example.com",
        "givenName": "John",
        "surname": "von Neumann",
        "displayName": "John von Neumann",
        "department": "Finance",
        "title": "Accountant",
        "location": "Boston",
        "managerId": "E1006",
        "status": "terminated",
        "startDate": "2018-04-09",
        "endDate": "2024-11-29",
        "groups": ["all-staff", "finance"],
    }
    ceo = listed["E1001"]["attributes"]
    assert "managerId" not in ceo and "endDate" not in ceo  # empty cells are absent, not ""
    assert {a["attributes"]["status"] for a in listed.values()} == {"active", "leave", "terminated"}


def test_values_are_stripped_quoted_cells_may_hold_delimiters_and_line_breaks(tmp_path):
    path = write(
        tmp_path,
        HEADER
        + ' E1 , a@example.com ,"Smith, Jr.",  ,active, x ; y ;; x \n'
        + "\n"
        + 'E2,b@example.com,"Line\nbreak","say ""hi""",leave,\n'
        + "E3,c@example.com,C,Sales,active,z\n",
    )
    listed = accounts(by_path(path))
    assert listed["E1"]["attributes"] == {
        "employeeId": "E1",
        "email": "a@example.com",
        "displayName": "Smith, Jr.",
        "status": "active",
        "groups": ["x", "y"],
    }
    assert listed["E2"]["attributes"]["displayName"] == "Line\nbreak"
    assert listed["E2"]["attributes"]["department"] == 'say "hi"'
    assert "groups" not in listed["E2"]["attributes"]
    # Lines are counted in the file: E3 starts on line 6 (after a blank line and a cell spanning two).
    broken = write(tmp_path, path.read_text() + "E4,d@example.com\n", "broken.csv")
    assert failure(by_path(broken)) == f"{broken}, line 7: 2 cells where the header has 6 columns"


def test_groups_are_entitlements_listed_once_in_the_order_first_seen(sample):
    config = by_path(sample)
    groups, _ = csv_connector.invoke("std:entitlement:list", config)
    assert [g["identity"] for g in groups] == [
        "all-staff", "leadership", "engineering", "prod-access", "on-call", "finance", "it-admins", "hr", "sales",
    ]  # fmt: skip
    assert groups[0] == {
        "identity": "all-staff",
        "key": {"simple": {"id": "all-staff"}},
        "type": "group",
        "attributes": {"id": "all-staff", "name": "all-staff"},
    }
    mapping = csv_connector.spec.map_entitlement(groups[0])
    assert (mapping.resource_id, mapping.resource_kind, mapping.role_id) == ("all-staff", "group", "member")
    listed = accounts(config)
    assert csv_connector.spec.account_entitlements(listed["E1005"]) == [
        "all-staff", "engineering", "prod-access", "on-call",
    ]  # fmt: skip
    assert csv_connector.spec.account_entitlement_refs(listed["E1012"]) == [("group", "engineering")]
    # Without groupsColumn, a column named groups is the groups column.
    assert accounts(by_path(sample, groupsColumn=None)) == listed


def test_groups_column_of_another_name_and_another_delimiter(tmp_path):
    path = write(tmp_path, "id,name,roles\nu1,Ann,admins|ops\nu2,Bob,\n")
    config = {"path": str(path), "identityColumn": "id", "nameColumn": "name", "groupsColumn": "roles",
              "groupsDelimiter": "|"}  # fmt: skip
    listed = accounts(config)
    assert listed["u1"]["attributes"] == {
        "id": "u1",
        "name": "Ann",
        "displayName": "Ann",
        "roles": "admins|ops",
        "groups": ["admins", "ops"],
    }
    assert listed["u2"]["attributes"] == {"id": "u2", "name": "Bob", "displayName": "Bob"}
    groups, _ = csv_connector.invoke("std:entitlement:list", config)
    assert [g["identity"] for g in groups] == ["admins", "ops"]
    no_groups = {k: v for k, v in config.items() if k != "groupsColumn"}
    assert csv_connector.invoke("std:entitlement:list", no_groups)[0] == []


def test_semicolon_delimited_latin1_file(tmp_path):
    text = "employeeId;displayName;department;groups\nE1;Zoë Müller;Produktion;Qualität,Büro\nE2;Ana Peña;Ventas;\n"
    path = write(tmp_path, text, encoding="latin-1")
    config = by_path(path, delimiter=";", encoding="latin-1", groupsDelimiter=",")
    listed = accounts(config)
    assert listed["E1"]["attributes"]["displayName"] == "Zoë Müller"
    assert listed["E1"]["attributes"]["groups"] == ["Qualität", "Büro"]
    assert listed["E2"]["attributes"]["displayName"] == "Ana Peña"
    # Read as UTF-8, the first byte that is not UTF-8 is named with its line.
    assert failure({**config, "encoding": "utf-8"}) == (
        f"{path}, line 2: not valid utf-8 (byte 0xeb at position 6); set encoding to the file's, "
        "e.g. latin-1 or cp1252"
    )


def test_tab_delimited_utf8_file_with_a_byte_order_mark(tmp_path):
    path = write(tmp_path, "\ufeffemployeeId\tdisplayName\nE1\tŁukasz Nowak\n", encoding="utf-8")
    for encoding in ("utf-8", "utf-8-sig"):
        listed = accounts(
            {"path": str(path), "identityColumn": "employeeId", "delimiter": "\t", "encoding": encoding}
        )
        assert listed["E1"]["attributes"] == {"employeeId": "E1", "displayName": "Łukasz Nowak"}


def test_content_gives_the_same_accounts_as_the_file(sample):
    content = {"connectionOption": "content", "content": sample.read_text("utf-8"), "identityColumn": "employeeId",
               "groupsColumn": "groups"}  # fmt: skip
    assert accounts(content) == accounts(by_path(sample))
    duplicate = content["content"] + "E1003,again@example.com,,,,,,,,,,,\n"
    assert failure({**content, "content": duplicate}) == (
        "the pasted CSV: employeeId 'E1003' is on line 4 and again on line 14; the identity column must be unique"
    )


def test_read_one_account_and_a_missing_one(sample):
    config = by_path(sample)
    read, _ = csv_connector.invoke("std:account:read", config, {"identity": "E1009"})
    assert read == [accounts(config)["E1009"]]
    with pytest.raises(ObjectNotFound) as caught:
        csv_connector.invoke("std:account:read", config, {"identity": "E9999"})
    assert str(caught.value) == f"no account 'E9999' in {sample}"


def test_discover_schema_gives_the_header_columns(tmp_path):
    path = write(tmp_path, "uid,fullName,costCenter,roles\nu1,Ann,CC1,a\n")
    config = {"path": str(path), "identityColumn": "uid", "nameColumn": "fullName", "groupsColumn": "roles"}
    (schema,), _ = csv_connector.invoke("std:account:discover-schema", config)
    assert schema["identityAttribute"] == "uid" and schema["displayAttribute"] == "displayName"
    assert schema["groupAttribute"] == "groups"
    assert [a["name"] for a in schema["attributes"]] == [
        "uid",
        "fullName",
        "costCenter",
        "roles",
        "displayName",
        "groups",
    ]
    assert schema["attributes"][-1] == {
        "name": "groups",
        "type": "string",
        "multi": True,
        "entitlement": True,
        "schemaObjectType": "group",
        "description": "Column roles, split on ';'",
    }
    # The listing holds exactly the attributes the discovered schema names.
    names = {a["name"] for a in schema["attributes"]}
    assert set(accounts(config)["u1"]["attributes"]) == names


def test_test_connection_says_what_the_header_holds(sample):
    (answer,), _ = csv_connector.invoke("std:test-connection", by_path(sample))
    assert answer == {
        "message": f"{sample}: 13 columns (employeeId, email, givenName, surname, displayName, department, "
        "title, location, managerId, status, startDate, endDate, groups); identity column 'employeeId'"
    }


def test_filters_exclude_leavers(sample):
    config = by_path(sample, **{"account.filterString": 'status == "terminated"'})
    outputs, result = csv_connector.invoke("std:account:list", config)
    assert result.filtered == 1 and "E1007" not in {o["identity"] for o in outputs}


# -- bad configs and bad files: one clear message each ------------------------------------------------


def test_configuration_errors(sample, tmp_path):
    good = by_path(sample)
    missing = tmp_path / "nowhere.csv"
    assert connection_error(csv_connector, {**good, "path": str(missing)}) == (
        f"cannot read {missing}: No such file or directory"
    )
    assert connection_error(csv_connector, {**good, "path": str(tmp_path)}) == (
        f"cannot read {tmp_path}: Is a directory"
    )
    assert connection_error(csv_connector, {**good, "path": "hr/people.csv"}) == (
        "config item 'path' (File path) must be an absolute path, got 'hr/people.csv'"
    )
    assert connection_error(csv_connector, {**good, "content": HEADER}) == (
        "give the file's path or its content, not both (config items 'path' and 'content')"
    )
    assert connection_error(csv_connector, {"identityColumn": "employeeId"}) == (
        "missing required config item 'path' (File path)"
    )
    assert connection_error(csv_connector, {**good, "delimiter": ":"}) == (
        "config item 'delimiter' (Delimiter): ':' is not one of ',', ';', '\\t', '|'"
    )
    assert connection_error(csv_connector, {**good, "encoding": "utf-16"}).startswith(
        "config item 'encoding' (Encoding): 'utf-16' is not one of 'utf-8', "
    )
    big = {"connectionOption": "content", "content": "x" * (MAX_CONTENT_CHARS + 1), "identityColumn": "x"}
    with pytest.raises(ConfigError, match=r"holds 1,048,577 characters, more than the 1,048,576 allowed"):
        csv_connector.invoke("std:test-connection", big)


def test_header_errors(sample, tmp_path):
    good = by_path(sample)
    assert connection_error(csv_connector, {**good, "identityColumn": "employee_id"}) == (
        f"{sample}: no column 'employee_id' (identityColumn) in the header; its columns are employeeId, email, "
        "givenName, surname, displayName, department, title, location, managerId, status, startDate, endDate, "
        "groups"
    )
    assert connection_error(csv_connector, {**good, "nameColumn": "fullName"}).startswith(
        f"{sample}: no column 'fullName' (nameColumn) in the header; its columns are employeeId, "
    )
    assert connection_error(csv_connector, {**good, "delimiter": ";"}) == (
        f"{sample}, line 1 (the header): a single column 'employeeId,email,givenName,surname,displayName,"
        "department,t…' with the delimiter semicolon (';'); the file seems to use comma (','): "
        "check the delimiter"
    )
    for name, text in (("empty.csv", ""), ("blank.csv", "\n\r\n\n")):
        path = write(tmp_path, text, name)
        assert connection_error(csv_connector, by_path(path)) == (
            f"{path} is empty: its first row must name the columns"
        )
    cases = {
        "employeeId,email,,groups\n": "column 3 has no name",
        "employeeId,email,email,groups\n": "column 'email' is named twice (columns 2 and 3)",
    }
    for text, problem in cases.items():
        path = write(tmp_path, text, "header.csv")
        assert connection_error(csv_connector, by_path(path)) == f"{path}, line 1 (the header): {problem}"
    path = write(tmp_path, "employeeId,displayName,fullName,groups\n", "names.csv")
    assert connection_error(csv_connector, by_path(path, nameColumn="fullName")) == (
        f"{path}, line 1 (the header): column 'displayName' clashes with the displayName attribute taken "
        "from column 'fullName' (nameColumn): rename one of them, or set nameColumn to 'displayName'"
    )
    assert connection_error(csv_connector, by_path(path, groupsColumn="fullName")) == (
        f"{path}, line 1 (the header): column 'groups' clashes with the groups attribute taken from column "
        "'fullName' (groupsColumn): rename one of them, or set groupsColumn to 'groups'"
    )
    assert connection_error(csv_connector, by_path(sample, groupsColumn="employeeId")) == (
        f"{sample}, line 1 (the header): column 'employeeId' cannot be both the identity column and the groups "
        "column"
    )
    # A file of one column is fine when it is the identity column.
    ids = write(tmp_path, "employeeId\nE1\nE2\n", "ids.csv")
    assert list(accounts({"path": str(ids), "identityColumn": "employeeId"})) == ["E1", "E2"]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("E1,a@x,A,D,active,g\nE2,b@x,B,D,active\n", "line 3: 5 cells where the header has 6 columns"),
        ("E1,a@x,A,D,active,g,extra\n", "line 2: 7 cells where the header has 6 columns"),
        ("E1,a@x,A,D,active,g\n ,b@x,B,D,active,g\n", "line 3: the identity column 'employeeId' is empty"),
        ("E1,a@x,A,D,active,g\nE2,b@x,B,D,active,g\nE1,c@x,C,D,active,g\n", None),
        (
            'E1,a@x,"A,D,active,g\nE2,b@x,B,D,active,g\n',
            "line 2: cannot read the row: unexpected end of data",
        ),
        ('E1,a@x,"A"B,D,active,g\n', "line 2: cannot read the row: ',' expected after '\"'"),
    ],
    ids=["fewer cells", "more cells", "empty identity", "duplicate", "unclosed quote", "bad quoting"],
)
def test_row_errors_name_the_line_and_fail_every_command(tmp_path, rows, problem):
    path = write(tmp_path, HEADER + rows)
    config = by_path(path)
    expected = (
        f"{path}, {problem}"
        if problem
        else f"{path}: employeeId 'E1' is on line 2 and again on line 4; the identity column must be unique"
    )
    assert failure(config) == expected
    assert failure(config, "std:entitlement:list") == expected
    assert failure(config, "std:account:read", {"identity": "nobody"}) == expected
    # test-connection reads the header only.
    assert csv_connector.invoke("std:test-connection", config)[0][0]["message"].startswith(
        f"{path}: 6 columns"
    )


def test_a_duplicate_far_into_the_file_is_found_before_the_listing_ends(tmp_path):
    path = tmp_path / "many.csv"
    with path.open("w") as f:
        f.write("employeeId,email\n")
        for i in range(30_000):
            f.write(f"E{i:06d},p{i}@example.com\n")
        f.write("E000123,again@example.com\n")
        for i in range(30_000, 30_010):
            f.write(f"E{i:06d},p{i}@example.com\n")
    sent = []
    with pytest.raises(ConnectorError) as caught:
        csv_connector.execute(
            "std:account:list",
            {"path": str(path), "identityColumn": "employeeId"},
            emit=lambda kind, data: sent.append(data["identity"]),
        )
    assert str(caught.value) == (
        f"{path}: employeeId 'E000123' is on line 125 and again on line 30002; the identity column must be unique"
    )
    assert len(sent) == 30_000  # the rows after the duplicate were never sent


def test_a_line_without_end_is_refused_not_read_whole(tmp_path):
    path = write(tmp_path, "employeeId\r" + "E1\r" * 400_000, "mac.csv")
    assert failure({"path": str(path), "identityColumn": "employeeId"}) == (
        f"{path}, line 1: longer than 1,048,576 bytes (is it a text file with one row a line?)"
    )


def test_seen_hashes_survive_growth():
    seen = _Seen()
    values = [hash(f"id-{i}") for i in range(5000)] + [0, -1, 2**63 - 1, -(2**63)]
    assert not any(seen.add(h) for h in values)
    assert len(seen.table) == 16384 and seen.used == len(values)
    assert all(seen.add(h) for h in values)


# -- size ----------------------------------------------------------------------------------------------


def test_a_100000_row_file_streams_in_flat_memory(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write(HEADER)
        for i in range(100_000):
            f.write(
                f"E{i:07d},person{i}@example.com,Person {i},Dept {i % 40},active,all-staff;team-{i % 300}\n"
            )
    size = path.stat().st_size
    config = by_path(path)
    count = 0

    def emit(kind, data):
        nonlocal count
        count += kind == "output"

    tracemalloc.start()
    try:
        result = csv_connector.execute("std:account:list", config, emit=emit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == result.sent == 100_000
    # The file is ~8 MiB and its rows as dicts several times that; what stays is the 2 MiB table of hashes.
    assert size > 7 * 2**20 and peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"

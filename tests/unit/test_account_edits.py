"""A tenant's accounts as edits and as a file, without a server: the edits that make the table read as a page's change
or a file's lines (of one account the last line wins; a replacing load removes what no line names, never what a refused
line names), what each edit tells the stream and the audit, and how a file is read (a refused line keeps its place and
the account it names; a file that is not an accounts file is one error naming it)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tapewatch.console.account_file import RefusedLine, read_accounts, read_file
from tapewatch.console.accounts import Edit, Holding, edits_to
from tapewatch.errors import TapewatchError
from tapewatch.records import AccountRef, account_key

TENANT = "acme"


def ref(account: str, owner: str | None = None, group: str | None = None) -> AccountRef:
    return AccountRef(tenant=TENANT, account=account, owner=owner, group=group, ts=1)


def held(**owners: str | None) -> dict[str, Holding]:
    return {account: {"owner": owner, "group": None} for account, owner in owners.items()}


def test_what_already_reads_so_is_no_edit() -> None:
    assert edits_to(TENANT, held(A1="O1"), [ref("A1", "O1")], remove_others=True) == []


def test_of_one_account_the_last_line_wins_in_the_place_of_its_first() -> None:
    edits = edits_to(TENANT, held(A1="O1"), [ref("A2", "O2"), ref("A1", "O7"), ref("A2", "O3", "G1")])
    assert [(edit.account, edit.action, edit.before, edit.ref) for edit in edits] == [
        ("A2", "account.add", None, ref("A2", "O3", "G1")),
        ("A1", "account.change", {"owner": "O1", "group": None}, ref("A1", "O7")),
    ]


def test_only_a_replacing_load_removes_and_never_what_a_refused_line_names() -> None:
    table = held(A1="O1", A2="O2", A3="O3")
    assert edits_to(TENANT, table, [ref("A1", "O1")]) == []
    removed = edits_to(TENANT, table, [ref("A1", "O1")], remove_others=True, keep={"A3"})
    assert removed == [Edit(TENANT, "A2", {"owner": "O2", "group": None}, None)]
    assert [edit.action for edit in removed] == ["account.remove"]


def test_an_edit_tells_the_stream_a_record_or_a_tombstone_and_the_audit_before_and_after() -> None:
    change = Edit(TENANT, "A1", {"owner": "O1", "group": None}, ref("A1", "O2", "G1"))
    removal = Edit(TENANT, "A1", {"owner": "O2", "group": "G1"}, None)
    assert change.key_value() == (account_key(TENANT, "A1"), ref("A1", "O2", "G1").to_json())
    assert removal.key_value() == (account_key(TENANT, "A1"), None)
    entry = change.audit_entry("cli:accounts-load", "cli:ops")
    assert (entry.actor, entry.action, entry.object_id, entry.tenant, entry.client) == (
        "cli:accounts-load", "account.change", "A1", TENANT, "cli:ops",
    )  # fmt: skip
    assert (entry.before, entry.after) == ({"owner": "O1", "group": None}, {"owner": "O2", "group": "G1"})
    assert removal.audit_entry("cli:accounts-load", None).after is None


def test_a_refused_line_keeps_its_place_and_the_account_it_names(tmp_path: Path) -> None:
    path = tmp_path / "firm.csv"
    path.write_text("group,account,owner\nG1,A1,O1\n,A2 ,bad owner\n,,O3\n,A 4,\n", encoding="utf-8")
    lines = read_file(path, TENANT, 5)
    assert lines[0] == AccountRef(tenant=TENANT, account="A1", owner="O1", group="G1", ts=5)
    refused = [line for line in lines if isinstance(line, RefusedLine)]
    assert [(line.place, line.field, line.account) for line in refused] == [
        (f"{path}:3", "account", "A2"),  # the account is checked first; its name, stripped, is kept from removal
        (f"{path}:4", "account", None),
        (f"{path}:5", "account", "A 4"),
    ]
    assert refused[0].raw == b"A2 ,bad owner," and refused[0].dead_letter("cli:accounts-load").source == f"{path}:3"


@pytest.mark.parametrize(
    ("text", "why"),
    [("owner,group\nO1,G1\n", "account required"), ("account,desk\nA1,D1\n", "account required"), ("", "not None")],
    ids=["no account column", "an unknown column", "empty"],
)
def test_a_file_that_is_not_an_accounts_file_is_refused_whole(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        list(read_accounts(io.StringIO(text), TENANT, 0, "x.csv"))


def test_a_file_that_cannot_be_read_is_one_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TapewatchError, match="no such file"):
        read_file(tmp_path / "missing.csv", TENANT, 0)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("account,owner\nA1,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(TapewatchError, match=r"latin\.csv: 'utf-8' codec"):
        read_file(latin, TENANT, 0)

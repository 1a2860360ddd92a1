"""Whose an account's trading is, by the firm's reference data: its beneficial owner (the report's own, or the account
itself, when the reference data does not know it) and its linked-account group, each a key that ties it to the
owner's or the group's other accounts.

>>> owner_keys("A1", None, {"A1": "O7"}, {"A1": "G2"}), owner_keys("A3", "O9", {}, {})
(['owner:O7', 'group:G2'], ['owner:O9'])
"""

from __future__ import annotations

from collections.abc import Mapping


def owner_keys(account: str, owner: str | None, owners: Mapping[str, str], groups: Mapping[str, str]) -> list[str]:
    """The account's owner key, then its group key if it has a group."""
    found = [f"owner:{owners.get(account) or owner or account}"]
    if account in groups:
        found.append(f"group:{groups[account]}")
    return found

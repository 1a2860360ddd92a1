"""The KRaft cluster id handed to Kafka's storage tool on a fresh machine."""

from __future__ import annotations

import base64
import itertools

from tapewatch.infra.kafka import new_cluster_id


def test_an_id_is_never_read_as_an_option() -> None:
    # 0xF8… encodes to "-…": the storage tool's parser took such an id for an option and the fresh install failed
    draws = iter([bytes([0xF8] * 16), bytes([0xFB] + [7] * 15), bytes([1] * 16)])
    cid = new_cluster_id(draws.__next__)
    assert cid == base64.urlsafe_b64encode(bytes([1] * 16)).decode().rstrip("=")


def test_random_ids_are_22_url_safe_characters() -> None:
    ids = [new_cluster_id() for _ in range(2000)]  # about 31 draws in 2000 start with "-" before the redraw
    assert all(len(cid) == 22 and not cid.startswith("-") for cid in ids)
    assert len(set(ids)) == len(ids)
    assert set(itertools.chain.from_iterable(ids)) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )

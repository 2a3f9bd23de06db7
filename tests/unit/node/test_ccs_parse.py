"""The store parses a state document once per revision: REST reads and loop passes at rest reuse it."""

from __future__ import annotations

from pathlib import Path

import pytest

from recluster.node.ccs import CcsStore
from recluster.node.config import NodeConfig
from recluster.node.models import ClusterRecord, ClusterState

pytestmark = pytest.mark.unit


def document(version: int) -> str:
    state = ClusterState(cluster=ClusterRecord(name="c", created_time="", username="u", password_hash="h"))
    state.version = version
    return state.model_dump_json()


def test_the_same_revision_is_parsed_once_and_a_new_one_again(tmp_path: Path) -> None:
    store = CcsStore(NodeConfig(addr="127.0.0.1", data_dir=tmp_path), "secret")
    first = store.parse(document(3))
    assert store.parse(document(3)) is first  # equal bytes: the parsed state is reused
    second = store.parse(document(4))
    assert second is not first and second.version == 4
    assert store.parse(document(3)) is not first  # only the last revision is kept

"""The store parses a state document once per revision, and a list view is rendered once per parsed state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recluster.node.ccs import CcsStore
from recluster.node.config import NodeConfig
from recluster.node.records import ClusterRecord, ClusterState
from recluster.node.views import RenderedList

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


def test_a_list_view_is_rendered_once_per_parsed_state() -> None:
    calls: list[int] = []

    def render(state: ClusterState) -> list[dict[str, object]]:
        calls.append(state.version)
        return [{"version": state.version, "name": "ü"}]

    views = RenderedList(render)
    first = ClusterState.model_validate_json(document(1))
    body = views.of(first)[1]
    assert views.of(first)[1] is body and calls == [1]  # asked again at rest: nothing rendered
    assert json.loads(body) == [{"version": 1, "name": "ü"}]
    assert json.loads(views.of(ClusterState.model_validate_json(document(2)))[1])[0]["version"] == 2
    assert calls == [1, 2]

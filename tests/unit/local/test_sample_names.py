"""`recluster local up` applies the examples and waits for the objects they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from recluster.local.sample import SampleError, _name

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_each_example_names_its_object() -> None:
    assert _name((EXAMPLES / "rec-persistent.yaml").read_text()) == "rec"
    assert _name((EXAMPLES / "redb-replicated.yaml").read_text()) == "redb"


def test_the_name_is_read_from_metadata_not_from_the_first_indented_name_line() -> None:
    text = "kind: X\nspec:\n  name: not-this\nmetadata:\n  labels: {a: b}\n  name: this\n"
    assert _name(text) == "this"


@pytest.mark.parametrize("text", ["kind: X\n", "metadata: {}\n", "- a\n", ": :\n  - ["])
def test_a_manifest_without_a_name_is_refused_clearly(text: str) -> None:
    with pytest.raises(SampleError, match=r"metadata\.name"):
        _name(text)

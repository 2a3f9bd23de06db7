"""The generated CRDs: current on disk, structural, and carrying the contract's identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from recluster.api.cli import crd_files, crds, stale_files
from recluster.api.crd import rec_crd, redb_crd, structural_problems

pytestmark = pytest.mark.unit

CRD_DIR = Path(__file__).resolve().parents[3] / "deploy" / "crds"


def test_committed_crds_are_current() -> None:
    assert stale_files(CRD_DIR) == [], "the CRDs are stale: run `recluster crds` and commit deploy/crds"


def test_check_flag(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(crds, ["--output-dir", str(tmp_path), "--check"]).exit_code == 1
    assert runner.invoke(crds, ["--output-dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(crds, ["--output-dir", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / sorted(crd_files())[0]).write_text("stale", encoding="utf-8")
    result = runner.invoke(crds, ["--output-dir", str(tmp_path), "--check"])
    assert result.exit_code == 1


@pytest.mark.parametrize("crd", [rec_crd(), redb_crd()], ids=["rec", "redb"])
def test_schemas_are_structural(crd: dict[str, Any]) -> None:
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert structural_problems(schema) == []
        assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
        assert version["subresources"] == {"status": {}}


def test_structural_checker_catches_problems() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"description": "untyped"},
            "b": {"$ref": "#/x"},
            "c": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "d": {"type": "array"},
            "e": {"type": "integer", "default": "3"},
            "f": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "g": {"type": "string", "enum": ["x"], "default": "y"},
        },
    }
    problems = structural_problems(bad)
    for field in "abcdefg":
        assert any(problem.startswith(f".{field}:") for problem in problems), field


def _resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in json_path.strip(".").split("."):
        if node is None:
            return None
        many = part.endswith("[*]")
        name = part.removesuffix("[*]")
        node = node.get("properties", {}).get(name) or node.get("additionalProperties")
        if node is not None and many:
            node = node.get("items")
    return node


@pytest.mark.parametrize("crd", [rec_crd(), redb_crd()], ids=["rec", "redb"])
def test_printer_columns_point_at_schema_fields(crd: dict[str, Any]) -> None:
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        for column in version["additionalPrinterColumns"]:
            if column["jsonPath"] == ".metadata.creationTimestamp":
                continue
            assert _resolve(schema, column["jsonPath"]) is not None, column


def test_rec_identity() -> None:
    crd = rec_crd()
    assert crd["metadata"]["name"] == "redisenterpriseclusters.app.redislabs.com"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "RedisEnterpriseCluster",
        "redisenterpriseclusters",
        ["rec"],
    )
    versions = {v["name"]: (v["served"], v["storage"]) for v in crd["spec"]["versions"]}
    assert versions == {"v1": (True, True), "v1alpha1": (True, False)}
    v1, v1alpha1 = crd["spec"]["versions"]
    assert v1["schema"] == v1alpha1["schema"]
    assert [c["name"] for c in v1["additionalPrinterColumns"]] == [
        "Nodes",
        "Version",
        "State",
        "Spec Status",
        "Age",
    ]


def test_redb_identity() -> None:
    crd = redb_crd()
    assert crd["spec"]["names"]["shortNames"] == ["redb"]
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Version",
        "Port",
        "Cluster",
        "Shards",
        "Status",
        "Spec Status",
        "Age",
    ]


def test_schema_carries_model_rules() -> None:
    spec = rec_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["x-kubernetes-preserve-unknown-fields"] is True  # original manifests apply unchanged
    assert spec["properties"]["nodes"] == {
        "type": "integer",
        "description": spec["properties"]["nodes"]["description"],
        "default": 3,
    }
    assert spec["properties"]["uiServiceType"]["enum"] == [
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
        "ExternalName",
    ]
    volume = spec["properties"]["persistentSpec"]["properties"]["volumeSize"]
    assert volume["x-kubernetes-int-or-string"] is True and "pattern" in volume
    assert spec["properties"]["podAntiAffinity"]["x-kubernetes-preserve-unknown-fields"] is True
    redb_spec = redb_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert len(redb_spec["properties"]["evictionPolicy"]["enum"]) == 8
    assert redb_spec["properties"]["memorySize"]["default"] == "100MB"


def test_files_are_plain_yaml_without_aliases() -> None:
    for text in crd_files().values():
        assert "&id" not in text and "*id" not in text
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"

"""The Dockerfile's contract, read statically: what the operator and the production build rely on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recluster.local.base_image import BASE_IMAGE, LEGACY_BASE_IMAGE
from recluster.local.images import CONTEXT_DIRS, CONTEXT_FILES

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_stages_on_the_debian_base() -> None:
    steps = instructions()
    assert ("ARG", f"BASE_IMAGE={BASE_IMAGE}") in steps
    assert ("ARG", f"REDIS70_BASE_IMAGE={LEGACY_BASE_IMAGE}") in steps
    assert [args for word, args in steps if word == "FROM"] == [
        "${REDIS70_BASE_IMAGE} AS redis70",
        "${BASE_IMAGE} AS deps",
        "deps AS venv",
        "deps AS project",
        "${BASE_IMAGE}",
    ]


def test_final_stage_user_entrypoint_labels() -> None:
    final = final_stage()
    assert ("USER", "1001") in final
    entrypoint = [json.loads(args) for word, args in final if word == "ENTRYPOINT"]
    assert entrypoint == [["/opt/recluster/bin/recluster"]]
    labels = " ".join(args for word, args in final if word == "LABEL")
    for key in ("title", "source", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels
    # the dependencies, then the project's own files over them
    copies = [args for word, args in final if word == "COPY"]
    assert copies == [
        "--from=redis70 /stage/opt/engines /opt/engines",
        "--from=venv /opt/recluster /opt/recluster",
        "--from=project /stage/opt/recluster /opt/recluster",
    ]


def test_final_stage_installs_runtime_packages_only() -> None:
    runs = " ".join(args for word, args in final_stage() if word == "RUN")
    match = re.search(r"apt-get install -y --no-install-recommends ([a-z0-9 .+-]+?)\s*&&", runs)
    assert match is not None
    runtime = {"ca-certificates", "python3", "redis-sentinel", "redis-server", "redis-tools", "valkey-server"}
    assert set(match.group(1).split()) == runtime
    assert "policy-rc.d" in runs  # the redis packages must not start services during the build


def test_the_node_is_told_its_engines_and_the_old_one_is_checked() -> None:
    final = final_stage()
    env = " ".join(args for word, args in final if word == "ENV")
    assert ('RECLUSTER_NODE_ENGINES="/usr/bin/redis-server /opt/engines/redis-7.0/bin/redis-server '
            '/usr/bin/valkey-server"') in env
    runs = " ".join(args for word, args in final if word == "RUN")
    # bookworm's binary on trixie: the build fails when ldd misses one of its libraries
    assert "! ldd /opt/engines/redis-7.0/bin/redis-server | grep -F 'not found'" in runs


def test_plain_dockerfile_syntax() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "# syntax=" not in text
    assert "--mount=" not in text  # BuildKit-only


def test_context_allow_list_matches_the_cache_key() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    # the cache key hashes exactly what the context admits (plus the Dockerfile and .dockerignore)
    assert allowed == (set(CONTEXT_FILES) - {"Dockerfile", ".dockerignore"}) | set(CONTEXT_DIRS)


def test_the_project_stage_imports_every_module_with_the_images_python() -> None:
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert 'pkgutil.walk_packages(recluster.__path__, "recluster.")' in runs

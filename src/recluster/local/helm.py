"""Helm, built from its Go module (tools/helm) for the chart in charts/recluster; no download.

The version is stamped as Helm's own release build does (its Makefile's LDFLAGS), so `helm version`
reports the pinned release and `helm template`/`helm lint` assume the Kubernetes version of the
client-go Helm was built with, not Helm's in-code fallback v1.20 (which the chart's kubeVersion
constraint would refuse)."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from recluster.local.kubebuild import module_binary
from recluster.local.paths import repo_dir
from recluster.local.run import CommandError

PACKAGE = "helm.sh/helm/v3/cmd/helm"


def module() -> Path:
    return Path(repo_dir()) / "tools" / "helm"


def _required(name: str) -> str:
    text = (module() / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(name)}\s+(v\d+\.\d+\.\d+)\b", text, re.MULTILINE)
    if match is None:
        raise CommandError(f"tools/helm/go.mod does not require {name} at a release")
    return match.group(1)


def helm_version() -> str:
    """The pinned helm.sh/helm/v3 version, read from tools/helm/go.mod (the one source)."""
    return _required("helm.sh/helm/v3")


def link_flags() -> str:
    """`-X` stamps of Helm's Makefile: its version, and the Kubernetes version its client-go
    (v0.X.Y) stands for (1.X), used by `helm template` and `helm lint` when no cluster is asked."""
    minor = _required("k8s.io/client-go").lstrip("v").split(".")[1]
    stamps = {
        "helm.sh/helm/v3/internal/version.version": helm_version(),
        "helm.sh/helm/v3/internal/version.gitTreeState": "clean",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor": minor,
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor": minor,
    }
    return " ".join(["-s", "-w", *(f"-X {key}={value}" for key, value in stamps.items())])


def ensure_helm(console: Console | None = None) -> Path:
    """The path of the `helm` binary, built once per tools/helm contents and Go toolchain (a cold
    build takes a few minutes on 2 cores) and cached under ~/.cache/recluster/go/."""
    console = console or Console(stderr=True)
    return module_binary(module(), PACKAGE, "helm", console, link_flags=link_flags())

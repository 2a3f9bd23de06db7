"""The majority rule, stated once: a cluster of n members acts only with a strict majority of them."""

from __future__ import annotations


def majority(nodes: int) -> int:
    return nodes // 2 + 1

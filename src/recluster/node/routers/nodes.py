"""Nodes: /v1/nodes and the remove action."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node import operations
from recluster.node.config import engine_table
from recluster.node.daemon import NodeDaemon
from recluster.node.deps import Daemon, authenticated
from recluster.node.errors import ApiError
from recluster.node.schemas import AUTHENTICATED, Action, Node, NodeActions, doc
from recluster.node.views import action_view, node_view

router = APIRouter(tags=["nodes"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


async def _leader_name(daemon: NodeDaemon) -> str | None:
    addr = await daemon.leader_addr()
    return addr[0] if addr else None


@router.get("/v1/nodes", **doc(list[Node]))
async def list_nodes(daemon: Daemon) -> list[dict[str, Any]]:
    state = await daemon.state()
    leader = await _leader_name(daemon)
    engines = engine_table(daemon.cfg)
    return [node_view(state, n, leader, engines) for n in sorted(state.nodes.values(), key=lambda n: n.uid)]


@router.get("/v1/nodes/{uid}", **doc(Node, 400, 404))
async def get_node(uid: int, daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    node = state.nodes.get(uid)
    if node is None:
        raise ApiError(404, "node_not_found", f"node {uid} does not exist")
    return node_view(state, node, await _leader_name(daemon), engine_table(daemon.cfg))


@router.post("/v1/nodes/{uid}/actions/remove", **doc(Action, 400, 404, 409))
async def remove_node(uid: int, daemon: Daemon) -> dict[str, Any]:
    return await operations.remove_node(daemon, uid)


@router.get("/v1/nodes/{uid}/actions/remove", **doc(Action, 400, 404))
async def remove_status(uid: int, daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    actions = [a for a in state.actions.values() if a.name == "remove_node" and a.node_uid == uid]
    if not actions:
        raise ApiError(404, "action_not_exist", f"no remove action for node {uid}")
    return action_view(max(actions, key=lambda a: a.creation_time))


@router.get("/v1/nodes/{uid}/actions", **doc(NodeActions, 400))
async def node_actions(uid: int, daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    return {"actions": [action_view(a) for a in state.actions.values() if a.node_uid == uid]}

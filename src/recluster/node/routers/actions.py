"""Long work: /v1/actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from recluster.node.deps import Daemon, authenticated
from recluster.node.errors import ApiError
from recluster.node.schemas import AUTHENTICATED, Action, Actions, doc
from recluster.node.views import action_view

router = APIRouter(tags=["actions"], dependencies=[Depends(authenticated)], responses=AUTHENTICATED)


@router.get("/v1/actions", **doc(Actions))
async def list_actions(daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    views = [action_view(a) for a in sorted(state.actions.values(), key=lambda a: a.creation_time)]
    return {"actions": [v for v in views if v["name"] == "remove_node"],
            "state-machines": [v for v in views if v["name"] != "remove_node"]}


@router.get("/v1/actions/{uid}", **doc(Action, 404))
async def get_action(uid: str, daemon: Daemon) -> dict[str, Any]:
    state = await daemon.state()
    action = state.actions.get(uid)
    if action is None:
        raise ApiError(404, "action_not_exist", f"action {uid} does not exist")
    return action_view(action)

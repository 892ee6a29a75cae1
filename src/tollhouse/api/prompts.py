"""Admin API for stored prompts under ``/admin/prompts``: list, show, push a version, move a label, roll
back, set an experiment, per-version metrics, shadow answers, diffs. Every route needs the admin key."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import PlainTextResponse, Response

from tollhouse.api.admin import Admin
from tollhouse.api.audit import audit
from tollhouse.api.deps import PromptsDep
from tollhouse.api.prompts_schema import (
    DataList,
    ExperimentOut,
    LabelEvent,
    PromptDetail,
    PromptList,
    PromptVersionOut,
    VersionMetrics,
)
from tollhouse.api.render import json_response
from tollhouse.errors import InvalidRequest, NotFound
from tollhouse.prompts import views
from tollhouse.prompts.drafts import check_label

router = APIRouter(prefix="/admin/prompts", tags=["Prompts (admin)"], dependencies=[Admin])


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None


@router.get("", responses={200: {"model": PromptList}})
async def list_prompts(prompts: PromptsDep) -> Response:
    return json_response({"data": [views.summary(p) for p in prompts.all()]})


@router.get("/{pid}", responses={200: {"model": PromptDetail}})
async def show_prompt(pid: str, prompts: PromptsDep) -> Response:
    return json_response(views.detail(prompts.get(pid)))


@router.post("/{pid}/versions", status_code=201, responses={201: {"model": PromptVersionOut}})
async def push_version(pid: str, request: Request, prompts: PromptsDep) -> Response:
    version = await prompts.push(pid, await _json(request), author="api")
    await audit(request, "prompt.push", pid, version=version.version)
    resp = json_response(version.to_dict())
    resp.status_code = 201
    return resp


@router.get("/{pid}/versions/{number}", responses={200: {"model": PromptVersionOut}})
async def show_version(pid: str, number: int, prompts: PromptsDep) -> Response:
    version = prompts.get(pid).versions.get(number)
    if version is None:
        raise NotFound(f"Prompt '{pid}' has no version {number}.", param="version")
    return json_response(version.to_dict())


@router.get("/{pid}/versions/{number}/metrics", responses={200: {"model": VersionMetrics}})
async def version_metrics(
    pid: str, number: int, prompts: PromptsDep, against: int | None = Query(None)
) -> Response:
    return json_response(await prompts.version_metrics(pid, number, against))


@router.get("/{pid}/diff", response_class=PlainTextResponse)
async def diff(
    pid: str, prompts: PromptsDep, a: int = Query(..., alias="from"), b: int = Query(..., alias="to")
) -> Response:
    try:
        text = views.diff(prompts.get(pid), a, b)
    except KeyError as exc:
        raise NotFound(str(exc.args[0]), param="version") from None
    return Response(text, media_type="text/plain")


@router.put("/{pid}/labels/{label}", responses={200: {"model": LabelEvent}})
async def move_label(pid: str, label: str, request: Request, prompts: PromptsDep) -> Response:
    check_label(label)
    body = await _json(request)
    number = body.get("version") if isinstance(body, dict) else None
    if not isinstance(number, int) or isinstance(number, bool):
        raise InvalidRequest('Expected {"version": N, "reason": "…"}.', param="version")
    reason = str(body.get("reason") or "")
    event = await prompts.move_label(pid, label, number, str(body.get("actor") or "api"), reason)
    await audit(
        request, "prompt.promote", pid, label=label, to=number, previous=event.previous, reason=reason
    )
    return json_response(event.to_dict())


@router.post("/{pid}/labels/{label}/rollback", responses={200: {"model": LabelEvent}})
async def roll_back(request: Request, pid: str, label: str, prompts: PromptsDep) -> Response:
    event = await prompts.roll_back(pid, label, "api")
    await audit(request, "prompt.roll_back", pid, label=label, to=event.version, previous=event.previous)
    return json_response(event.to_dict())


@router.put("/{pid}/experiment", responses={200: {"model": ExperimentOut}})
async def set_experiment(pid: str, request: Request, prompts: PromptsDep) -> Response:
    body = await _json(request)
    if body is not None and not isinstance(body, dict):
        raise InvalidRequest("An experiment is a JSON object (or null to end it).", param="experiment")
    await prompts.set_experiment(pid, body)
    await audit(request, "prompt.experiment" if body is not None else "prompt.experiment_end", pid)
    return json_response({"id": pid, "experiment": body})


@router.delete("/{pid}/experiment", responses={200: {"model": ExperimentOut}})
async def end_experiment(request: Request, pid: str, prompts: PromptsDep) -> Response:
    await prompts.set_experiment(pid, None)
    await audit(request, "prompt.experiment_end", pid)
    return json_response({"id": pid, "experiment": None})


@router.get("/{pid}/evaluations", responses={200: {"model": DataList}})
async def evaluations(pid: str, prompts: PromptsDep) -> Response:
    """Results of ``tollhouse eval prompt`` runs, newest last."""
    return json_response({"data": prompts.get(pid).evaluations})


@router.get("/{pid}/shadow", responses={200: {"model": DataList}})
async def shadow_answers(pid: str, prompts: PromptsDep) -> Response:
    prompts.get(pid)
    return json_response({"data": list(prompts.shadow_answers.get(pid, ()))})

"""The long-term store: put, get, delete and search items; list namespaces."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from langgraph.store.base import NOT_PROVIDED
from pydantic import BaseModel, Field

from ..services import store as service
from .common import JSONResponse, caller, no_content, runtime

router = APIRouter(tags=["store"], default_response_class=JSONResponse)
MAX_OFFSET = 2**62  # PostgreSQL takes a bigint


class ItemRef(BaseModel):
    namespace: list[str] = Field(default_factory=list)
    key: str


class ItemPut(ItemRef):
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = Field(None, strict=True)  # minutes; null: never expires; absent: store.ttl.default_ttl


class ItemSearch(BaseModel):
    namespace_prefix: list[str] | None = None
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    query: str | None = None
    refresh_ttl: bool | None = None


class NamespaceList(BaseModel):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1, le=2**31 - 1)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


@router.put("/store/items", status_code=204)
async def put_item(request: Request, body: ItemPut):
    ttl = body.ttl if "ttl" in body.model_fields_set else NOT_PROVIDED
    await service.put_item(
        runtime(request), caller(request), body.namespace, body.key, body.value, index=body.index, ttl=ttl
    )
    return no_content()


@router.get("/store/items")
async def get_item(request: Request, key: str, namespace: str = "", refresh_ttl: bool | None = None):
    """`namespace`: the labels joined with dots, as the SDK sends them."""
    return await service.get_item(
        runtime(request), caller(request), namespace.split(".") if namespace else [], key, refresh_ttl=refresh_ttl
    )


@router.delete("/store/items", status_code=204)
async def delete_item(request: Request, body: ItemRef):
    await service.delete_item(runtime(request), caller(request), body.namespace, body.key)
    return no_content()


@router.post("/store/items/search")
async def search_items(request: Request, body: ItemSearch):
    items = await service.search_items(runtime(request), caller(request), **body.model_dump())
    return {"items": items}


@router.post("/store/namespaces")
async def list_namespaces(request: Request, body: NamespaceList):
    return {"namespaces": await service.list_namespaces(runtime(request), caller(request), **body.model_dump())}

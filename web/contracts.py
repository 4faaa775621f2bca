"""HTTP routes of the published contracts: the AsyncAPI document and each message's JSON Schema."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.contracts_export import asyncapi_document, json_schemas, render
from web.api import Route


async def asyncapi_route(api: Any, request: web.Request) -> web.Response:
    """GET the AsyncAPI document (a handler for web.api.Route: `api` is the WebApi, unused)."""
    return web.Response(text=render(asyncapi_document()), content_type="application/json")


async def json_schema_route(api: Any, request: web.Request) -> web.Response:
    """GET one JSON Schema by name, from the path parameter `name` (`incident.open.v1`)."""
    schema = json_schemas().get(request.match_info.get("name", "").removesuffix(".schema.json"))
    if schema is None:
        return web.json_response({"error": f"no contract named {request.match_info.get('name')!r}"}, status=404)
    return web.Response(text=render(schema), content_type="application/json")


ROUTES = (
    Route("GET", "/api/contracts/asyncapi.json", asyncapi_route, "public", "none"),
    Route("GET", "/api/contracts/{name}", json_schema_route, "public", "none"),
)

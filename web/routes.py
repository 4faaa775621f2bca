"""The API's route table, assembled from each area's module (order kept: the first route that matches wins)."""

from __future__ import annotations

from web import accounts, api, changes, configuration, contracts, incidents, monitoring, problems, sla
from web.api import Route

AREAS = (api, incidents, sla, accounts, problems, changes, configuration, monitoring, contracts)


def all_routes() -> tuple[Route, ...]:
    """Every route of every area; a method and path declared twice is a mistake."""
    routes = tuple(route for area in AREAS for route in area.ROUTES)
    seen: set[tuple[str, str]] = set()
    for route in routes:
        if (route.method, route.path) in seen:
            raise RuntimeError(f"{route.method} {route.path} is declared twice")
        seen.add((route.method, route.path))
    return routes

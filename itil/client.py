"""A terminal client of the HTTP API, behind `itil incident …` and `itil account …`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    """The engine refused the request; the message is the engine's."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error", body) if isinstance(body, dict) else body
        fields = body.get("fields") if isinstance(body, dict) else None
        prefix = f"{status}: " if status else ""
        super().__init__(f"{prefix}{message}" + (f" {json.dumps(fields)}" if fields else ""))
        self.status = status


def request(base_url: str, method: str, path: str, body: dict[str, Any] | None = None, actor: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if actor:
        req.add_header("X-Actor", actor)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            raise ApiError(e.code, json.loads(raw)) from None
        except ValueError:
            raise ApiError(e.code, raw.decode(errors="replace")) from None
    except urllib.error.URLError as e:
        raise ApiError(0, f"cannot reach the engine at {base_url}: {e.reason}") from None

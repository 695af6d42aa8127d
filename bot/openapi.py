"""`GET /v1/openapi.json`: the OpenAPI description of `/v1`, shipped as `bot/openapi.yaml`."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@cache
def description() -> dict[str, Any]:
    """The description as data, read once from the package."""
    return yaml.safe_load(files("bot").joinpath("openapi.yaml").read_text(encoding="utf-8"))


async def get_description(request: Request) -> JSONResponse:
    return JSONResponse(description())


routes = [Route("/v1/openapi.json", get_description, methods=["GET"])]

"""The single-page app's files from console/dist, with the SPA fallback: any path that is
not /api/... and names no file (no extension) is answered with index.html, so the app's own
routes (/models/credit-risk) load on a reload or a shared link."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from .proxy import problem

__all__ = ["static_router"]

NOT_BUILT = "the console is not built: run `make console` (npm run build in console/)"


def static_router(dist: Path) -> APIRouter:
    r = APIRouter(tags=["console"])
    root = dist.resolve()

    def index() -> Response:
        page = root / "index.html"
        if not page.is_file():
            return problem(503, "Service Unavailable", NOT_BUILT)
        # the page names the hashed assets of the current build: never cache it
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    @r.get("/", include_in_schema=False)
    async def home() -> Response:
        return index()

    @r.get("/{path:path}", include_in_schema=False)
    async def files(path: str) -> Response:
        if path == "api" or path.startswith("api/"):
            return problem(404, "Not Found", f"no API at /{path}: use /api/<service>/...")
        target = (root / path).resolve()
        if target.is_relative_to(root) and target.is_file():
            immutable = target.is_relative_to(root / "assets")  # Vite's hashed file names
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(target, headers={"Cache-Control": cache})
        if "." in path.rsplit("/", 1)[-1]:
            return problem(404, "Not Found", f"no file /{path} in the console's build")
        return index()

    return r

"""The dashboard (统计看板) at http://localhost:8004/: static files of this package, ECharts included
(vendored from the npm registry, no CDN at run time). The page calls the API with the user's token."""

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
# Only these files are served (no path from the request reaches the file system).
FILES = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}

router = APIRouter(tags=["dashboard 看板"], include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/dashboard/{name:path}")
async def asset(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(404, detail={"message_zh": "没有该文件", "message_en": "no such file"})
    return FileResponse(FILES[name])

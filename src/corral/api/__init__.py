"""The studio's HTTP API: FastAPI, JSON under /api/v1, and the web app it serves.

`create_app(workspace)` builds it; `corral serve` runs it with uvicorn.
"""

from corral.api.app import create_app

__all__ = ["create_app"]

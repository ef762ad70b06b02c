"""The scoring server: FastAPI app with the JSON API under /api (and the pages, if present).

Build it with :func:`harness.server.app.create_app`; ``harness serve`` runs it with uvicorn.
"""

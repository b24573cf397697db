"""Import target for ASGI servers (`uvicorn opencdp.asgi:app`), configured from the environment."""

from opencdp.api.app import create_app

app = create_app()

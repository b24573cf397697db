"""The REST API v2.1 surface (rest-api.md): routers over the domain core."""

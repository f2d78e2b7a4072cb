"""OGC API Features on pygeoapi, in-process: the public service at /ogc and the internal,
token-protected service at /internal/ogc (see `app.ogc.service`)."""
from app.ogc.service import init_app

__all__ = ["init_app"]

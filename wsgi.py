"""The one WSGI application: Flask at /, with the OGC API at /ogc and /internal/ogc, and /tiles
(vector tiles from Flask, MapProxy mounted by a DispatcherMiddleware in `app.tiles.init_app`, so
every `create_app()` — tests included — serves the same paths)."""
from app import create_app

app = create_app()
application = app

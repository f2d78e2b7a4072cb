"""The one WSGI application: Flask at /. (The OGC API at /ogc and MapProxy at /tiles are
mounted here as they arrive.)"""
from app import create_app

app = create_app()
application = app

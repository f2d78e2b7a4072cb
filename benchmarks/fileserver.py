"""The floor peer of the cached-tile benchmark: a bare WSGI application that serves the files of a
folder, nothing else (no routing framework, no database), run by benchmarks/run under gunicorn with
2 sync workers like OneMap. TARGETS.md: a cached tile through OneMap >= 0.8 x this.

    FILE_ROOT=var/bench/run/static gunicorn --workers 2 --chdir benchmarks fileserver:app
"""
import os

ROOT = os.path.realpath(os.environ.get("FILE_ROOT", "."))
TYPES = {".pbf": "application/vnd.mapbox-vector-tile", ".mvt": "application/vnd.mapbox-vector-tile",
         ".png": "image/png"}


def app(environ, start_response):
    path = os.path.realpath(os.path.join(ROOT, environ.get("PATH_INFO", "").lstrip("/")))
    try:
        if not path.startswith(ROOT + os.sep):
            raise FileNotFoundError(path)
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", TYPES.get(os.path.splitext(path)[1], "application/octet-stream")),
                              ("Content-Length", str(len(data)))])
    return [data]

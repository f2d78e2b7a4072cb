"""The Flask application: map pages, JSON API, OGC API Features, health, and the CLI groups."""
from __future__ import annotations

from flask import Flask

from config import Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, ONEMAP=settings, JSON_AS_ASCII=False)
    app.json.ensure_ascii = False

    from app import db
    db.init_app(app)

    from app import auth
    auth.init_app(app)  # staff login, sessions, CSRF: /login, /logout, /api/session

    from app.health import bp as health_bp
    app.register_blueprint(health_bp)
    from app import map as web_map
    web_map.init_app(app)   # / (staff) and /public/ maps, their JSON, /vendor assets
    from app.query import bp as query_bp
    app.register_blueprint(query_bp)    # /api/query, /query/print: the inspector's area query
    from app.upload import bp as upload_bp
    app.register_blueprint(upload_bp)   # /upload: the clerks' submissions (etl.importer)

    from app.comparisons import approvals_bp, bp as comparisons_bp
    app.register_blueprint(comparisons_bp)   # /api/comparisons: comparison runs as jobs, their reports
    app.register_blueprint(approvals_bp)     # /api/approvals/<id>/compliance: 审批合规性核查

    from app import ogc
    ogc.init_app(app)  # /ogc (public) and /internal/ogc (department tokens)

    from app import tiles
    tiles.init_app(app)  # /tiles: vector tiles and TileJSON here, WMTS/TMS/WMS from MapProxy

    from app.cli import register_cli
    register_cli(app)
    return app

"""Mini-PBX: a web app that runs a small business's Asterisk through PJSIP Realtime."""

import os

from flask import Flask

from . import config as settings


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True, template_folder="../templates", static_folder="../static")
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(settings.from_environment(app.instance_path))
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    # A wallboard stays open all day: the CSRF token lives as long as the session, not an hour.
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    # A CSV import of a few thousand extensions is well under this; 10 MB of junk is refused at the door.
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024
    if config:
        app.config.from_mapping(config)

    from . import audit, cli, errors, service_base, site_time
    from .auth import access
    from .ext import csrf, db, migrate
    from .realtime import hooks

    # Every page shows times in the site's zone (PBX_TIMEZONE): `local(a UTC time)` in any template.
    app.jinja_env.globals["local"] = site_time.local
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    csrf.init_app(app)
    hooks.init_app(app)
    audit.init_app(app)
    errors.init_app(app)
    access.init_app(app)
    service_base.init_app(app)
    cli.init_app(app)
    from .live import socket as live_socket

    live_socket.init_app(app)
    if app.config["PBX_BEHIND_PROXY"]:
        # Exactly one proxy hop (nginx) tells the scheme and host a browser used: the socket's Origin check and
        # the session cookie's Secure flag depend on them.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    from .auth.views import bp as auth_bp
    from .dids_trunks.api import dids_bp, trunks_bp
    from .extensions.api import bp as extensions_api
    from .extensions.views import bp as extensions_pages
    from .groups.views import bp as groups_pages
    from .dids_trunks.trunk_views import trunks_bp as trunks_pages
    from .dids_trunks.views import dids_bp as dids_pages
    from .auth.users import bp as users_pages
    from .audit.views import bp as audit_pages
    from .cdr.api import bp as cdr_api
    from .cdr.views import bp as calls_pages
    from .waiting_calls.views import bp as dashboard
    from .groups.api import bp as groups_api
    from .waiting_calls.api import bp as live_api
    from .voicemail.views import bp as voicemail_pages
    from .pauses.api import bp as pauses_api
    from .pauses.views import bp as pause_reasons_pages
    from .missed.api import bp as missed_api
    from .missed.views import bp as missed_pages

    for blueprint in (auth_bp, live_api, extensions_api, groups_api, dids_bp, trunks_bp, extensions_pages, groups_pages,
                      dids_pages, trunks_pages, users_pages, audit_pages, cdr_api, calls_pages, dashboard,
                      live_socket.bp, voicemail_pages, pauses_api, pause_reasons_pages, missed_api, missed_pages):
        app.register_blueprint(blueprint)
    return app

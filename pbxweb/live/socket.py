"""The live socket at /live/ws: push-only, one per open dashboard.

The handshake needs a signed-in session (auth/access.py, before any view) and an `Origin` equal to the app's
own, else it is refused before the upgrade. Each connection subscribes to this process's hub with its own
bounded queue, drained by this one greenlet, the only one that writes to the socket: a slow browser falls
behind alone (its queue overflows into "send everything again"), never slowing the others. On every
(re)connect it first sends every panel, so nothing the browser shows stays stale. What each connection
receives is rendered for its user, with the same role rules as the API, and for the page of the presence grid
its dashboard shows (the socket's query string is the page's: group, search, cursor). Every RECHECK_SECONDS it
checks that its session still lives and that what its user may see has not changed, and closes if either did.
"""

import socket as socketlib
import time

from flask import Blueprint, abort, current_app, g, request, session
from flask_sock import Sock
from gevent.event import AsyncResult
from gevent.queue import Empty

from ..ext import db
from ..validation import ServiceError
from .hub import hub

bp = Blueprint("live", __name__)
sock = Sock()

# How often a socket checks that its session lives and that its user may still see what it was sent; the app
# config LIVE_RECHECK_SECONDS overrides it (tests).
RECHECK_SECONDS = 15


def same_origin() -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin == f"{request.scheme}://{request.host}"


@bp.before_request
def refuse_other_origins():
    # A page on another site must not open a socket with this user's cookie (cross-site websocket hijacking).
    if not same_origin():
        abort(403)


def _sight_now(session_key: str, view) -> tuple | None:
    """What this session's user may see now (panels.viewer: role, groups, own phone); None once the session
    has ended (logout, reset, deactivation, idle). An open dashboard counts as use of its session."""
    from ..auth import sessions
    from ..waiting_calls import panels

    user = sessions.user_of(session_key)
    sight = None if user is None else panels.viewer(user, view)
    db.session.remove()  # a socket lives for hours: hold no connection while it waits
    return sight


@sock.route("/live/ws", bp=bp, endpoint="socket")
def socket(ws):
    from ..waiting_calls import panels

    # Small fragments, one after another: without this, Nagle's algorithm holds each behind the browser's
    # delayed ACK of the one before (tens of milliseconds per push).
    ws.sock.setsockopt(socketlib.IPPROTO_TCP, socketlib.TCP_NODELAY, 1)
    user = g.user
    session_key = session["key"]
    recheck = current_app.config.get("LIVE_RECHECK_SECONDS", RECHECK_SECONDS)
    try:
        view = panels.presence_view(request.args)  # the dashboard's view: which page of the grid it shows
    except ServiceError:
        return
    queue = hub.subscribe()
    subscribed_at = hub.published
    try:
        # Taken before the panels are rendered: a change in between shows up at the first re-check.
        viewer = panels.viewer(user, view)
        first, shown = panels.first_frame(user, view, subscribed_at)
        ws.send(first)
        db.session.remove()
        checked = time.monotonic()
        while True:
            try:
                # Under load a message is often there already: no timer to start and cancel for it.
                message = queue.get_nowait()
            except Empty:
                try:
                    message = queue.get(timeout=recheck)
                except Empty:
                    message = None
            if time.monotonic() - checked >= recheck:
                # Changed (a role, the groups, having a phone) or ended: close. The browser reconnects
                # and is sent every panel as it may now see them, or is refused.
                if _sight_now(session_key, view) != viewer:
                    return
                checked = time.monotonic()
            if message is None:
                continue
            # The hub hands every subscriber the same message: the first connection of each kind of viewer
            # renders it while the others wait for that rendering (rendering yields on the database, so
            # without the wait every connection would render it again).
            rendered = message.setdefault("_rendered", {})
            fragment = rendered.get(viewer)
            if fragment is None:
                fragment = rendered[viewer] = AsyncResult()
                try:
                    fragment.set(panels.changes(user, message, view, shown))
                except Exception as exc:  # noqa: BLE001 — the waiting connections must not hang on it
                    fragment.set_exception(exc)
                    raise
                finally:
                    db.session.remove()
            html = fragment.get()
            if html:
                ws.send(html)
    finally:
        hub.unsubscribe(queue)


def init_app(app) -> None:
    # simple-websocket pings the browser, so proxies keep the socket open and a dead one is noticed.
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25})
    sock.init_app(app)

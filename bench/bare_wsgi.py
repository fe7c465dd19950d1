"""The bare stack, for bench/load.py's baseline: Flask behind the same gunicorn configuration, answering the
cheapest request's path with a small JSON body and nothing else (no session, no database, no template). No
page of the app can be served faster than this on the machine the bench runs on."""

from flask import Flask

app = Flask(__name__)


@app.get("/api/waiting-calls")
def waiting_calls():
    return {"waiting": []}

"""A gevent worker runs a few requests at a time (pbxweb/admission.py), so that live pushes never wait behind
fifty of them; websockets are not counted, and every turn is given back, however the answer ends."""

import gevent
import pytest

from pbxweb.admission import TakingTurns


class App:
    """A WSGI app whose answers take a while (waiting, as on the database) and count how many run at once."""

    def __init__(self):
        self.running = self.most = 0

    def __call__(self, environ, start_response):
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if environ.get("fail"):
                raise RuntimeError("the view failed")
            gevent.sleep(0.01)
        finally:
            self.running -= 1
        start_response("200 OK", [])
        return [b"answer"]


def answer(app, environ):
    body = app(environ, lambda status, headers: None)
    try:
        return b"".join(body)
    finally:
        body.close()


def test_at_most_a_few_requests_run_at_once():
    inner = App()
    app = TakingTurns(inner, running_at_once=3)
    requests = [gevent.spawn(answer, app, {}) for _ in range(20)]
    gevent.joinall(requests, timeout=5)
    assert [r.value for r in requests] == [b"answer"] * 20 and inner.most == 3


def test_websockets_are_not_counted():
    inner = App()
    app = TakingTurns(inner, running_at_once=1)
    sockets = [gevent.spawn(answer, app, {"HTTP_UPGRADE": "websocket"}) for _ in range(5)]
    gevent.joinall(sockets, timeout=5)
    assert inner.most == 5


def test_a_failed_request_gives_its_turn_back():
    app = TakingTurns(App(), running_at_once=1)
    with pytest.raises(RuntimeError):
        answer(app, {"fail": True})
    assert answer(app, {}) == b"answer"


def test_an_answer_cut_short_gives_its_turn_back():
    app = TakingTurns(App(), running_at_once=1)
    body = app({}, lambda status, headers: None)
    body.close()  # the client went away before reading it
    assert gevent.spawn(answer, app, {}).get(timeout=2) == b"answer"

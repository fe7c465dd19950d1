"""At most a few requests of a gevent worker run at once; the others wait their turn before they start.

A worker is one thread: every greenlet ready to run waits for all the others ahead of it. With fifty pages
and exports being worked on at once, a live push (a websocket's greenlet, woken by an AMI event) waited
behind all fifty, seconds under load. Admitting a few at a time keeps that line short: the pushes run
between a few requests, and the requests still get the worker's whole CPU. Websockets are not counted: they
wait on their queues, not on the CPU.
"""

from gevent.lock import BoundedSemaphore

# Enough to keep the CPU busy while some of them wait on PostgreSQL.
RUNNING_AT_ONCE = 4


class TakingTurns:
    """WSGI middleware: a request (its streamed answer included) holds one of RUNNING_AT_ONCE turns."""

    def __init__(self, app, running_at_once: int = RUNNING_AT_ONCE):
        self.app = app
        self.turns = BoundedSemaphore(running_at_once)

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            return self.app(environ, start_response)
        self.turns.acquire()
        try:
            answer = self.app(environ, start_response)
        except BaseException:
            self.turns.release()
            raise
        return _Releasing(answer, self.turns.release)


class _Releasing:
    """The answer's pieces, then its turn given back when the server closes it (also when cut short)."""

    def __init__(self, answer, release):
        self.answer = answer
        self.release = release

    def __iter__(self):
        return iter(self.answer)

    def close(self):
        try:
            close = getattr(self.answer, "close", None)
            if close is not None:
                close()
        finally:
            release, self.release = self.release, None
            if release is not None:
                release()

"""A mail server for tests: speaks enough SMTP on 127.0.0.1 to take messages, and keeps them."""

import socket
import threading
from email import message_from_bytes, policy


class CapturingSmtpServer:
    def __init__(self):
        self.messages = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._running = True
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self._listener.settimeout(0.2)
        while self._running:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with conn:
                self._session(conn.makefile("rwb"))

    def _session(self, stream):
        def say(line):
            stream.write(line.encode() + b"\r\n")
            stream.flush()

        say("220 test ESMTP")
        while line := stream.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                say("250 test")
            elif command == b"DATA":
                say("354 go on")
                data = b""
                while (chunk := stream.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.messages.append(message_from_bytes(data, policy=policy.default))
                say("250 taken")
            elif command == b"QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")

    def stop(self):
        self._running = False
        self._listener.close()

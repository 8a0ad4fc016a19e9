"""Real servers for the notification tests: an SMTP server (aiosmtpd) and an HTTP webhook receiver."""

import email
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SMTPServer:
    """An SMTP server on a port of its own, keeping every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.port = free_port()
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def received(self) -> list:
        with self._lock:
            return list(self.messages)

    def start(self):
        self._controller.start()
        return self

    def stop(self):
        self._controller.stop()


class WebhookReceiver:
    """An HTTP server that records each POST's JSON body; it answers 500 to the first `fail` posts."""

    def __init__(self, fail: int = 0):
        self.bodies: list[dict] = []
        self.fail = fail
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's hook name)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with receiver._lock:
                    failing = receiver.fail > 0
                    if failing:
                        receiver.fail -= 1
                    else:
                        receiver.bodies.append({"body": body, "event_key": self.headers.get("X-Scheduler-Event-Key")})
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"receiver is down" if failing else b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def received(self) -> list[dict]:
        with self._lock:
            return list(self.bodies)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

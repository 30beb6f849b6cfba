"""An SMTP sink with the part of Mailpit's HTTP API that CI reads (see the Dockerfile)."""

import email
import email.policy
import itertools
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

messages: list[dict] = []
lock = threading.Lock()
ids = itertools.count(1)


class Sink:
    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        with lock:
            messages.insert(
                0,
                {
                    "ID": str(next(ids)),
                    "From": {"Name": "", "Address": envelope.mail_from},
                    "To": [{"Name": "", "Address": rcpt} for rcpt in envelope.rcpt_tos],
                    "Subject": str(parsed.get("Subject", "")),
                    "Snippet": " ".join(text.split())[:250],
                    "Text": text,
                    "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            )
        return "250 Message accepted for delivery"


class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/readyz":
            return self._answer(200, {"ok": True})
        if self.path.split("?")[0] == "/api/v1/messages":
            with lock:
                listed = list(messages)
            return self._answer(200, {"total": len(listed), "messages": listed})
        return self._answer(404, {"error": "not found"})

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    # PID 1 in its container: without a handler of its own, SIGTERM (docker stop) does nothing.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    Controller(Sink(), hostname="0.0.0.0", port=1025).start()  # noqa: S104 - a container
    print("smtp sink: SMTP on 1025, API on 8025", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8025), Api).serve_forever()  # noqa: S104

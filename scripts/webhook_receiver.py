#!/usr/bin/env python3
"""A real webhook receiver for esignsp's tests and drills (SPEC §11).

Listens on 127.0.0.1 (port given, or 0 for a free one; the first line printed is the port),
verifies every POST with the independent Standard Webhooks implementation (the
`standardwebhooks` PyPI package, timestamp tolerance included) against each configured secret
separately, and records it. Control endpoints (JSON):

  POST /_secrets     ["whsec_…", …]         the secrets to verify with
  POST /_fail        {"count": N, "status": 500}  answer the next N deliveries with that status
                                            (count -1: all of them); "redirect": "/elsewhere"
                                            answers 307 to it instead; "body": "…" answers
                                            that text (UTF-8) instead of the usual one
  GET  /_deliveries  [{"path", "id", "timestamp", "verified": [bool per secret], "body",
                       "status"}]           every request received, in order
  POST /_reset                              forget the deliveries

With --log FILE each delivery is also appended to FILE as one JSON line (drills count them
across receiver restarts).
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

lock = threading.Lock()
state = {"secrets": [], "fail": 0, "status": 500, "redirect": None, "body": None, "deliveries": []}
log_file = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value, status=200):
        self._answer(status, json.dumps(value).encode(), [("Content-Type", "application/json")])

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)

    def do_GET(self):
        if self.path == "/_deliveries":
            with lock:
                self._json(state["deliveries"])
        else:
            self._answer(404)

    def do_POST(self):
        body = self._body()
        if self.path == "/_secrets":
            with lock:
                state["secrets"] = json.loads(body)
            return self._answer(204)
        if self.path == "/_fail":
            order = json.loads(body)
            with lock:
                state["fail"] = order.get("count", 0)
                state["status"] = order.get("status", 500)
                state["redirect"] = order.get("redirect")
                state["body"] = order.get("body")
            return self._answer(204)
        if self.path == "/_reset":
            with lock:
                state["deliveries"] = []
            return self._answer(204)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with lock:
            secrets = list(state["secrets"])
        verified = []
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers)
                verified.append(True)
            except WebhookVerificationError:
                verified.append(False)
        with lock:
            failing = state["fail"] != 0
            if state["fail"] > 0:
                state["fail"] -= 1
            redirect = state["redirect"] if failing else None
            answer = state["body"] if failing and state["body"] is not None else None
            status = (307 if redirect else state["status"]) if failing else 204
            record = {
                "path": self.path,
                "id": headers.get("webhook-id"),
                "timestamp": headers.get("webhook-timestamp"),
                "signature": headers.get("webhook-signature"),
                "verified": verified,
                "body": body.decode("utf-8", "replace"),
                "status": status,
            }
            state["deliveries"].append(record)
            if log_file:
                with open(log_file, "a") as f:
                    f.write(json.dumps(record) + "\n")
        if redirect:
            self._answer(status, b"", [("Location", redirect)])
        elif answer is not None:
            self._answer(status, answer.encode())
        else:
            self._answer(status, b"failing on purpose" if failing else b"")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A sender that went away mid-answer (a drill kills it) is not an error of the receiver.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    global log_file
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", action="append", default=[])
    parser.add_argument("--log")
    args = parser.parse_args()
    state["secrets"] = args.secret
    log_file = args.log
    server = Server(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()

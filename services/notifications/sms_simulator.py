"""A local SMS provider (短信平台) simulator for demos and tests.

It speaks the API that ``SmsChannel`` expects: ``POST /v1/messages`` with a
bearer key and ``{"to", "text", "ref"}``; a number that is not a mainland
mobile is refused with 400 ``invalid_number`` (a permanent failure). It keeps
what it accepted; ``GET /v1/messages`` lists it.

    python -m services.notifications.sms_simulator --port 8090 --key dev-sms-key
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class SmsSimulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, key: str = "dev-sms-key") -> None:
        self.key = key
        self.messages: list[dict] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> "SmsSimulator":
        """Serve in a background thread (tests, in-process demos)."""
        self._thread = threading.Thread(target=self.serve_forever, name="sms-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _accept(self, body: dict) -> tuple[int, dict]:
        if not isinstance(body.get("to"), str) or not isinstance(body.get("text"), str):
            return 400, {"error": "bad_request"}
        if not _MOBILE.match(body["to"]):
            with self._lock:
                self.refused += 1
            return 400, {"error": "invalid_number"}
        with self._lock:
            self.messages.append(body)
            return 200, {"id": f"sim-{len(self.messages)}"}

    def _handler(self):
        sim = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as providers' APIs do: a connection per message would measure the handshakes.
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, body) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path != "/v1/messages":
                    return self._reply(404, {"error": "not_found"})
                if self.headers.get("Authorization") != f"Bearer {sim.key}":
                    return self._reply(401, {"error": "bad_key"})
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except ValueError:
                    return self._reply(400, {"error": "bad_json"})
                self._reply(*sim._accept(body if isinstance(body, dict) else {}))

            def do_GET(self) -> None:
                if self.path != "/v1/messages":
                    return self._reply(404, {"error": "not_found"})
                with sim._lock:
                    self._reply(200, list(sim.messages))

            def log_message(self, *args) -> None:
                pass  # request lines would carry nothing useful; bodies carry phones

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMS provider simulator (records what it receives).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--key", default="dev-sms-key")
    args = parser.parse_args()
    sim = SmsSimulator(args.host, args.port, args.key)
    print(f"SMS simulator on {sim.url}/v1/messages (GET lists what it received)", flush=True)
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

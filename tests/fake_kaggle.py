"""A small stand-in for the Kaggle API on loopback, spoken to by the real ``kaggle`` client.

With ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` the client (kagglesdk) sends its requests to
``http://localhost/api/v1/<Service>/<Method>`` as JSON POSTs. Port 80 needs root, so the tests
point ``HTTP_PROXY`` at this server instead: it receives the absolute URL and answers for it.
DownloadDataFiles answers like Kaggle: a redirect to the bundle's blob URL, then the zip.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DOWNLOAD_PATH = "/api/v1/competitions.CompetitionApiService/DownloadDataFiles"


class FakeKaggle:
    """Serve ``bundle`` for any competition; ``mode`` picks "ok", "forbidden" or "unauthorized"."""

    def __init__(self, bundle: bytes = b"", mode: str = "ok"):
        self.bundle, self.mode = bundle, mode
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment variables that send the kaggle client here, with test credentials."""
        env = {
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "HTTP_PROXY": self.proxy_url,
            "http_proxy": self.proxy_url,
            "NO_PROXY": "",
            "no_proxy": "",
            "KAGGLE_USERNAME": "tester",
            "KAGGLE_KEY": "not-a-real-key",
        }
        env.update(extra)
        return env

    def __enter__(self) -> "FakeKaggle":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # Keep pytest output clean.
                pass

            def _send(self, status: int, body: bytes, content_type: str, **headers: str):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, message: str):
                body = json.dumps({"code": status, "message": message}).encode()
                self._send(status, body, "application/json")

            def do_POST(self):
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"path": path, "json": payload,
                                      "authorization": self.headers.get("Authorization")})
                if path != DOWNLOAD_PATH:
                    return self._error(404, f"no such endpoint {path}")
                if fake.mode == "forbidden":
                    return self._error(403, "You must accept this competition's rules before "
                                            "you'll be able to download files.")
                if fake.mode == "unauthorized":
                    return self._error(401, "Unauthenticated")
                name = payload.get("competitionName", "bundle")
                self.send_response(302)
                self.send_header("Location", f"http://localhost/blobs/{name}.zip?sig=abc")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                path = urlsplit(self.path).path
                fake.requests.append({"path": path, "json": None,
                                      "authorization": self.headers.get("Authorization")})
                if not path.startswith("/blobs/"):
                    return self._error(404, "not found")
                self._send(200, fake.bundle, "application/zip",
                           **{"Last-Modified": "Sat, 21 Nov 2026 12:00:00 GMT"})

        return Handler

"""A small stand-in for the Kaggle API on loopback, spoken to by the real ``kaggle`` client.

With ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` the client (kagglesdk) sends its requests to
``http://localhost/api/v1/<Service>/<Method>`` as JSON POSTs. Port 80 needs root, so the tests
point ``HTTP_PROXY`` at this server instead: it receives the absolute URL and answers for it.
DownloadDataFiles answers like Kaggle: a redirect to the bundle's blob URL, then the zip.
Submitting is StartSubmissionUpload (returns an upload URL and token), a PUT of the file, then
CreateSubmission; ListSubmissions reports it pending once, then scored.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SERVICE = "/api/v1/competitions.CompetitionApiService/"
DOWNLOAD_PATH = SERVICE + "DownloadDataFiles"
PUBLIC_SCORE = "0.99571"
SCORING_ERROR = "Submission must have 28000 rows, found a header problem on line 1"
INTROSPECT_PATH = "/api/v1/security.OAuthService/IntrospectToken"


class FakeKaggle:
    """Serve ``bundle`` for any competition and accept submissions.

    ``mode``: "ok", "forbidden" (403), "unauthorized" (401), "not_found" (404 on download),
    "short_body" (the bundle cut short of its Content-Length, on every try), "trickle" (the
    bundle a byte at a time, 0.2 s apart: no read ever waits long), "bad_request" (400
    with a reason on CreateSubmission), "rate_limited" (429 with Retry-After on the first
    CreateSubmission), "rate_limited_poll" (the same on the first ListSubmissions),
    "upload_fails" (500 on the file's PUT), "scoring_error" (the submission ends in ERROR with
    Kaggle's error description), "not_json" (CreateSubmission takes the file, then answers with
    an HTML page) or "odd_status" (ListSubmissions gives a status the client does not know).

    ``hold_create``, when set, is an Event that CreateSubmission waits for after taking the
    file (a send in flight; a server that never answers); ``on_create`` is called there too.
    """

    def __init__(self, bundle: bytes = b"", mode: str = "ok"):
        self.bundle, self.mode = bundle, mode
        self.requests: list[dict] = []
        self.uploads: dict[str, bytes] = {}
        self.submissions: list[dict] = []
        self.file_names: dict[str, str] = {}  # Upload token -> the file name the client gave.
        # GetSubmissionLimits: what is left today; a submission taken uses one.
        self.limits = {"numToday": 0, "numTotal": 0, "numAllowedNow": 5, "limitedByTotal": False}
        self.rate_limited_once = False
        self.hold_create: threading.Event | None = None
        self.hold_download: threading.Event | None = None  # DownloadDataFiles waits for it.
        self.on_create = None
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
        for held in (self.hold_create, self.hold_download):
            if held is not None:
                held.set()  # Let a held answer go, so the server can stop.
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
                if path == INTROSPECT_PATH:  # The client checks an access token before use.
                    token = payload.get("token", "")
                    if token.startswith("KGAT_"):
                        return self._json({"active": True, "username": "tester"})
                    return self._error(400, "invalid token")
                if path.startswith(SERVICE) and path != DOWNLOAD_PATH:
                    return self._submission_call(path[len(SERVICE):], payload)
                if path != DOWNLOAD_PATH:
                    return self._error(404, f"no such endpoint {path}")
                if fake.hold_download is not None:
                    fake.hold_download.wait(60)
                if fake.mode == "forbidden":
                    return self._error(403, "You must accept this competition's rules before "
                                            "you'll be able to download files.")
                if fake.mode == "unauthorized":
                    return self._error(401, "Unauthenticated")
                if fake.mode == "not_found":
                    return self._error(404, "Competition not found")
                name = payload.get("competitionName", "bundle")
                self.send_response(302)
                self.send_header("Location", f"http://localhost/blobs/{name}.zip?sig=abc")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _json(self, payload: dict):
                self._send(200, json.dumps(payload).encode(), "application/json")

            def _submission_call(self, method: str, payload: dict):
                if fake.mode == "unauthorized":
                    return self._error(401, "Unauthenticated")
                if method == "GetSubmissionLimits":
                    return self._json(fake.limits)
                if method == "StartSubmissionUpload":
                    token = f"blob-{len(fake.uploads) + len(fake.file_names) + 1}"
                    fake.file_names[token] = payload.get("fileName")
                    return self._json({"token": token,
                                       "createUrl": f"http://localhost/uploads/{token}"})
                if method == "CreateSubmission":
                    if fake.mode == "forbidden":
                        return self._error(403, "You must accept this competition's rules "
                                                "before you can submit.")
                    if fake.mode == "bad_request":
                        return self._error(400, "Your team has used its daily Submission "
                                                "allowance (5) today, please try again tomorrow.")
                    if fake.mode == "rate_limited" and not fake.rate_limited_once:
                        fake.rate_limited_once = True
                        body = json.dumps({"code": 429, "message": "Too many requests"}).encode()
                        return self._send(429, body, "application/json", **{"Retry-After": "2"})
                    token = payload.get("blobFileTokens")
                    if token not in fake.uploads:
                        return self._error(400, f"unknown upload token {token!r}")
                    ref = 1000 + len(fake.submissions)
                    fake.submissions.append({"ref": ref, "description":
                                             payload.get("submissionDescription"),
                                             "content": fake.uploads[token], "polls": 0,
                                             "fileName": fake.file_names.get(token),
                                             "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime())})
                    fake.limits["numToday"] += 1
                    fake.limits["numTotal"] += 1
                    fake.limits["numAllowedNow"] = max(fake.limits["numAllowedNow"] - 1, 0)
                    if fake.on_create is not None:
                        fake.on_create()
                    if fake.hold_create is not None:
                        fake.hold_create.wait(60)
                    if fake.mode == "not_json":
                        return self._send(200, b"<html>Service Unavailable</html>",
                                          "text/html")
                    return self._json({"message": "Successfully submitted to Digit Recognizer",
                                       "ref": ref})
                if method == "ListSubmissions":
                    if fake.mode == "rate_limited_poll" and not fake.rate_limited_once:
                        fake.rate_limited_once = True
                        body = json.dumps({"code": 429, "message": "Too many requests"}).encode()
                        return self._send(429, body, "application/json", **{"Retry-After": "3"})
                    listed = []
                    size = int(payload.get("pageSize") or 20)
                    page = int(payload.get("page") or 1)
                    newest_first = list(reversed(fake.submissions))
                    for submission in newest_first[(page - 1) * size:page * size]:
                        submission["polls"] += 1
                        done = submission["polls"] > 1
                        failed = done and fake.mode == "scoring_error"
                        listed.append({"ref": submission["ref"],
                                       "description": submission["description"],
                                       "fileName": submission.get("fileName"),
                                       "date": submission.get("date",
                                                              "2026-11-21T12:00:00Z"),
                                       "status": ("QUEUED_FOR_REVIEW"
                                                  if fake.mode == "odd_status" else
                                                  "ERROR" if failed else "COMPLETE" if done
                                                  else "PENDING"),
                                       **({"errorDescription": SCORING_ERROR} if failed
                                          else {"publicScore": PUBLIC_SCORE} if done else {})})
                    return self._json({"submissions": listed})
                return self._error(404, f"no such method {method}")

            def do_PUT(self):
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                fake.requests.append({"path": path, "json": None,
                                      "authorization": self.headers.get("Authorization")})
                if not path.startswith("/uploads/"):
                    return self._error(404, "not found")
                if fake.mode == "upload_fails":
                    return self._error(500, "upload storage unavailable")
                fake.uploads[path.rsplit("/", 1)[1]] = body
                self._send(200, b"{}", "application/json")

            def do_GET(self):
                path = urlsplit(self.path).path
                fake.requests.append({"path": path, "json": None,
                                      "authorization": self.headers.get("Authorization")})
                if not path.startswith("/blobs/"):
                    return self._error(404, "not found")
                if fake.mode == "trickle":  # One byte every 0.2 s: every read gets something.
                    self.send_response(200)
                    self.send_header("Content-Type", "application/zip")
                    self.send_header("Content-Length", str(len(fake.bundle)))
                    self.end_headers()
                    for byte in fake.bundle[:100]:
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:  # The client gave up.
                            return
                        time.sleep(0.2)
                    self.close_connection = True
                    return
                if fake.mode == "short_body":  # Promise the whole bundle, send half, hang up.
                    self.send_response(200)
                    self.send_header("Content-Type", "application/zip")
                    self.send_header("Content-Length", str(len(fake.bundle)))
                    self.end_headers()
                    self.wfile.write(fake.bundle[: len(fake.bundle) // 2])
                    self.close_connection = True
                    return
                self._send(200, fake.bundle, "application/zip",
                           **{"Last-Modified": "Sat, 21 Nov 2026 12:00:00 GMT"})

        return Handler

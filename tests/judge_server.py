"""A fake OpenAI-compatible chat server on 127.0.0.1 for the judge tests.

It speaks POST /v1/chat/completions with the real response shape and decides what to do from
the `answer:` line of the judge prompt, so each test picks a behaviour by the answer it judges:

- `choose:X`       reply {"choice": "X"}
- `rate-limit`     first request 429 with `Retry-After: <retry_after>`, then {"choice": "B"}
- `always-500`     500 every time (with `retry-after-ms: 1` so the client's backoff is short)
- `not-json`       reply prose every time
- `not-json-once`  first reply prose, then {"choice": "C"}
- `slow`           wait `slow_s` seconds, then {"choice": "B"}
- `echo-key`       400 whose error message repeats the Authorization header
- `echo-key-ok`    {"choice": "B", "note": <the Authorization header>}
- `echo-key-most`  400 whose message repeats the Authorization header but its last 4 characters
- `echo-url`       400 whose message repeats the request's path and query string
- `huge:N`         reply {"choice": "B", "pad": <N characters>}
- `gzip-ok`        {"choice": "C"}, gzip-compressed although the client asked for none
- `gzip-bomb:N`    reply {"choice": "B", "pad": <N zeros>}, gzip-compressed (N=64 MB: 64 KB sent)
- `deep`           reply a JSON choice with an array nested 100,000 deep
- `drip`           a 200 whose body comes one byte every 0.2 s (for up to 20 s)
- `unauthorized`   401
- `say:TEXT`       reply TEXT as it is (prose, an option letter, ...)
- `hang`           answer nothing until the server stops (a hung server)
anything else      {"choice": "A"}

With `models`, GET /v1/models lists them and a chat request naming another model gets a 400
whose reason is in FastAPI's {"detail": ...} (as `transformers serve` pinned to one model
answers); without, there is no /models (404) and every model name is served.

It counts requests per prompt (and GET /models requests) and keeps every request body, and the
Authorization header and query string of every chat request.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ANSWER = re.compile(r"^answer: (.*)$", re.MULTILINE)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"error": {"message": message, "type": "server_error", "code": None}}
        self._send(status, body, headers)

    def _completion(self, model: str, content: str) -> dict:
        fake = self.server.fake
        with fake.lock:
            fake.completions += 1
            serial = fake.completions
        return {
            "id": f"chatcmpl-test{serial}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 6, "total_tokens": 106},
        }

    def _reply(self, model: str, content: str) -> None:
        self._send(200, self._completion(model, content))

    def _send_bytes(self, data: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading

    def _gzip_bomb(self, model: str, size: int) -> None:
        """A completion whose content pads to `size` zeros, gzip-compressed piece by piece (so
        the server never holds the uncompressed body)."""
        head, tail = json.dumps(self._completion(model, "\0")).split("\\u0000")
        pack = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [pack.compress((head + '{\\"choice\\": \\"B\\", \\"pad\\": \\"').encode())]
        block = b"0" * (1 << 20)
        for _ in range(size // len(block)):
            parts.append(pack.compress(block))
        parts.append(pack.compress(('\\"}' + tail).encode()) + pack.flush())
        self._send_bytes(b"".join(parts), {"Content-Encoding": "gzip"})

    def _huge(self, model: str, size: int) -> None:
        """A completion whose content pads to `size` x's, sent a megabyte at a time (so the
        server never holds it, and memory measured in this process is the client's)."""
        head, tail = json.dumps(self._completion(model, "\0")).split("\\u0000")
        head = (head + '{\\"choice\\": \\"B\\", \\"pad\\": \\"').encode()
        tail = ('\\"}' + tail).encode()
        block = memoryview(b"x" * (1 << 20))
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(head) + size + len(tail)))
            self.end_headers()
            self.wfile.write(head)
            for start in range(0, size, len(block)):
                self.wfile.write(block[: size - start])
            self.wfile.write(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading

    def _drip(self) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            for _ in range(100):
                if self.server.fake.stopping.wait(0.2):
                    return
                self.wfile.write(b" ")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        fake = self.server.fake
        with fake.lock:
            fake.model_lists += 1
        if self.path != "/v1/models" or fake.models is None:
            self._error(404, f"no route {self.path}")
            return
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in fake.models]
        self._send(200, {"object": "list", "data": data})

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        fake = self.server.fake
        path, _, query = self.path.partition("?")
        if path != "/v1/chat/completions":
            self._error(404, f"no route {path}")
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        prompt = body["messages"][0]["content"]
        auth = self.headers.get("Authorization", "")
        with fake.lock:
            fake.auth.append(auth)
            fake.queries.append(query)
            fake.bodies.append(body)
            fake.counts[prompt] += 1
            n = fake.counts[prompt]
        found = _ANSWER.search(prompt)
        answer = found.group(1) if found else ""
        model = body.get("model", "")
        if fake.models is not None and model not in fake.models:
            served = fake.models[0] if fake.models else ""
            self._send(400, {"detail": f"Server is pinned to '{served}'; requested '{model}'."})
        elif answer.startswith("say:"):
            self._reply(model, answer.removeprefix("say:").replace("\\n", "\n"))
        elif answer.startswith("hang"):
            fake.stopping.wait(60)
            self._error(503, "stopping")
        elif answer.startswith("choose:"):
            self._reply(model, json.dumps({"choice": answer.removeprefix("choose:")[:1]}))
        elif answer.startswith("rate-limit"):
            if n == 1:
                self._error(429, "Rate limit reached", {"Retry-After": str(fake.retry_after)})
            else:
                self._reply(model, '{"choice": "B"}')
        elif answer.startswith("always-500"):
            self._error(500, "The server had an error", {"retry-after-ms": "1"})
        elif answer.startswith("not-json-once"):
            self._reply(model, "I think it is B." if n == 1 else '{"choice": "C"}')
        elif answer.startswith("not-json"):
            self._reply(model, "The answer addresses question 2, so B.")
        elif answer.startswith("slow"):
            time.sleep(fake.slow_s)
            self._reply(model, '{"choice": "B"}')
        elif answer.startswith("echo-key-most"):
            self._error(400, f"Incorrect API key provided: {auth[:-4]}****")
        elif answer.startswith("echo-url"):
            self._error(400, f"Unknown route {self.path} (auth: {auth})")
        elif answer.startswith("huge:"):
            self._huge(model, int(answer.removeprefix("huge:")))
        elif answer.startswith("gzip-ok"):
            data = json.dumps(self._completion(model, '{"choice": "C"}')).encode()
            self._send_bytes(gzip.compress(data), {"Content-Encoding": "gzip"})
        elif answer.startswith("gzip-bomb:"):
            self._gzip_bomb(model, int(answer.removeprefix("gzip-bomb:")))
        elif answer.startswith("deep"):
            self._reply(model, '{"choice": "B", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
        elif answer.startswith("drip"):
            self._drip()
        elif answer.startswith("echo-key-ok"):
            self._reply(model, json.dumps({"choice": "B", "note": auth}))
        elif answer.startswith("echo-key"):
            self._error(400, f"Invalid request; you sent {auth}")
        elif answer.startswith("unauthorized"):
            self._error(401, "Incorrect API key provided")
        else:
            self._reply(model, '{"choice": "A"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI


class FakeOpenAI:
    """Start with `start()`, point the openai client at `url`, stop with `stop()`."""

    def __init__(
        self,
        retry_after: str = "1",
        slow_s: float = 2.0,
        models: tuple[str, ...] | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.models = models
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.auth: list[str] = []
        self.queries: list[str] = []
        self.completions = 0
        self.model_lists = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def count(self, prompt: str) -> int:
        with self.lock:
            return self.counts[prompt]

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # a hung request lets go
        self._server.shutdown()
        self._server.server_close()

"""The panel's web app: the page, its event stream, the answer desk, the run's reports.

One poller reads the run directories a few times a second and fans what changed out to
every open page; a page that connects gets the whole state first (`init`), taken under
the same lock as the poll, so it can neither miss an increment nor get one twice. The
files are read in a worker thread: a slow disk delays the next poll, never a page.

An answer is checked against the record as it is at that moment (the poll is run first,
under the lock), so of two pages answering one question the first POST wins and the
second is told so, before anything reaches the run.

Everything but /static lives under the run's key, `/p/<key>/`, and reaches the app only
through the guard (reports/panel/guard.py: key, Host, Origin); an answer must also be
JSON (415 otherwise), so a cross-site form, which cannot send JSON, can never be one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from reports.panel.answers import (
    AnswerRefused,
    append_answer,
    check_answer,
    client_label,
)
from reports.panel.guard import Guard, GuardMiddleware
from reports.panel.runs import RunSet
from reports.rundir import REPORT_DIR

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: wall seconds between two looks at the run's files
POLL_S = 0.25
#: a comment line this often keeps proxies and the browser from closing a quiet stream
KEEPALIVE_S = 15.0
#: events queued for one page before it is dropped as too slow (its browser reconnects)
QUEUE_MAX = 2000
#: the run folders a page may fetch files from
REPORT_FOLDERS = (REPORT_DIR, "allure-report")

log = logging.getLogger("traction-rig.panel")


class Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_MAX)


class Hub:
    """The runs, the poller and the pages listening."""

    def __init__(self, runs: RunSet, poll_s: float = POLL_S, keepalive_s: float = KEEPALIVE_S) -> None:
        self.runs = runs
        self.poll_s = poll_s
        self.keepalive_s = keepalive_s
        self.lock = asyncio.Lock()
        self.subscribers: set[Subscriber] = set()
        self.closed = False
        self._failed = None

    async def _poll_locked(self) -> None:
        events = await anyio.to_thread.run_sync(self.runs.poll)
        self.broadcast(events)

    async def refresh(self) -> None:
        async with self.lock:
            await self._poll_locked()

    def broadcast(self, events) -> None:
        if not events:
            return
        for sub in list(self.subscribers):
            try:
                for event in events:
                    sub.queue.put_nowait(event)
            except asyncio.QueueFull:  # too slow to keep up: it starts again from a full state
                self.subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        sub.queue.get_nowait()
                sub.queue.put_nowait(None)

    async def run(self) -> None:
        while not self.closed:
            try:
                await self.refresh()
                self._failed = None
            except Exception as exc:  # noqa: BLE001 — one line per kind of failure, the panel goes on
                text = f"{type(exc).__name__}: {exc}"
                if text != self._failed:
                    log.warning("panel: reading the run failed: %s", text)
                    self._failed = text
            await asyncio.sleep(self.poll_s)

    async def subscribe(self) -> tuple[Subscriber, dict]:
        async with self.lock:
            sub = Subscriber()
            self.subscribers.add(sub)
            return sub, self.runs.snapshot()

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def close(self) -> None:
        """End every event stream (the server is stopping)."""
        self.closed = True
        for sub in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self.subscribers.clear()


def sse(event: str, data) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n".encode()


class EventStream:
    """A text/event-stream response that ends quietly when the page goes away: it listens
    for the disconnect itself and treats a failed send as one, whichever ASGI spec
    version the server speaks."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, scope, receive, send) -> None:
        hub = self.hub
        sub, snapshot = await hub.subscribe()
        try:
            async with anyio.create_task_group() as tg:

                async def stream() -> None:
                    try:
                        await send({"type": "http.response.start", "status": 200, "headers": [
                            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                            (b"x-accel-buffering", b"no")]})
                        await send({"type": "http.response.body", "body": b"retry: 2000\n\n" + sse("init", snapshot),
                                    "more_body": True})
                        while True:
                            try:
                                item = await asyncio.wait_for(sub.queue.get(), hub.keepalive_s)
                            except TimeoutError:
                                await send({"type": "http.response.body", "body": b": keepalive\n\n",
                                            "more_body": True})
                                continue
                            if item is None:
                                break
                            chunks = [sse(*item)]
                            while not sub.queue.empty() and len(chunks) < 200:
                                more = sub.queue.get_nowait()
                                if more is None:
                                    sub.queue.put_nowait(None)
                                    break
                                chunks.append(sse(*more))
                            await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    except OSError:
                        pass  # the page went away mid-send
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        break
                tg.cancel_scope.cancel()
        finally:
            hub.unsubscribe(sub)


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": text}, status_code=status)


def create_app(runs: RunSet, *, guard: Guard, poll_s: float = POLL_S, keepalive_s: float = KEEPALIVE_S) -> Starlette:
    hub = Hub(runs, poll_s, keepalive_s)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-store"})

    async def events(request: Request) -> Response:
        return EventStream(hub)

    async def state(request: Request) -> Response:
        async with hub.lock:
            await hub._poll_locked()
            return JSONResponse(json.loads(json.dumps(runs.snapshot(), default=str)))

    async def answer(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            return _error(415, f"Send the answer as application/json (not {kind or 'no content type'}); "
                               "nothing was sent.")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return _error(422, "Send the answer as a JSON object {ask, answer, operator}.")
        run_id = body.get("run", 0)
        follower = runs.get(run_id) if isinstance(run_id, int) and not isinstance(run_id, bool) else None
        if follower is None:
            return _error(409, f"No run {run_id!r} is followed by this panel; nothing was sent.")
        client = request.client
        label = client_label(client.host if client else None, client.port if client else None)
        async with hub.lock:  # one answer at a time, checked against the record as it is now
            await hub._poll_locked()
            try:
                ask, text, operator = check_answer(follower, body.get("ask"), body.get("answer"), body.get("operator"))
                line = await anyio.to_thread.run_sync(append_answer, follower, ask, text, operator, label)
            except AnswerRefused as refused:
                return _error(refused.status, str(refused))
            except OSError as exc:
                return _error(500, f"The answer could not be written to the run directory: {exc.strerror or exc}.")
            change = follower.changed("operator")
            if change is not None:
                hub.broadcast([(change[0], {"run": follower.id, "value": change[1]})])
        return JSONResponse({"ok": True, "line": line,
                             "message": f"Sent {text!r} as {operator}; the run records which answer counts."})

    async def report(request: Request) -> Response:
        follower = runs.get(request.path_params["run"])
        if follower is None:
            return _error(404, "No such run in this panel.")
        base = follower.dir.resolve()
        target = (base / request.path_params["path"]).resolve()
        if not any(target.is_relative_to(base / folder) and target != base / folder for folder in REPORT_FOLDERS):
            return _error(403, "Only the run's report/ and allure-report/ folders are served.")
        if not target.is_file():
            return _error(404, f"{target.relative_to(base)}: not there (yet).")
        return FileResponse(target)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            hub.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(routes=[
        Mount("/p/{key}", routes=[
            Route("/", page),
            Route("/events", events),
            Route("/state", state),
            Route("/answer", answer, methods=["POST"]),
            Route("/report/{run:int}/{path:path}", report),
        ]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ], lifespan=lifespan, middleware=[Middleware(GuardMiddleware, guard=guard)])
    app.state.hub = hub
    app.state.guard = guard
    return app

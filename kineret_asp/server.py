"""``kineret-asp serve``: the policy as an HTTP service (FastAPI on uvicorn).

Requests and responses use the JSON of the command line: a case (or a FHIR
Bundle) in, the decision format out; ``missing`` and ``what-if`` answer as
``--format json`` does; ``batch`` streams NDJSON both ways, one record per
input line, never a line lost. Bad input is HTTP 422 with the same one-line
messages (``{"errors": [...]}``). Every request body is capped, every
request has a time limit, and with a token file every request without
``Authorization: Bearer <token>`` is refused with 401. CDS Hooks services
and the adaptive questionnaire live here too (:mod:`kineret_asp.cds`,
:mod:`kineret_asp.questionnaire`).
"""
import asyncio
import contextlib
import functools
import hmac
import signal
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Optional

from .errors import CaseError, KbError, KineretError
from .knowledge import KnowledgeBase, version_folders

DEFAULT_BODY_LIMIT = 1_000_000
DEFAULT_BATCH_LIMIT = 256 * 1024 * 1024
DEFAULT_TIME_LIMIT = 10.0
BATCH_CHUNK = 200
REPORTS_KEPT = 1000


class LimitExceeded(Exception):
    """A request body went over its cap."""


def run_limited(func: Callable[[], Any], seconds: float) -> Any:
    """Run blocking work off the event loop, stopped waiting for at ``seconds``.

    The one call to switch to process-isolated limits (kineret_asp.limits)
    once they exist: today the work runs in a thread, and the solver's own
    time limits end it.
    """
    import anyio

    return asyncio.wait_for(anyio.to_thread.run_sync(func), seconds)


def schema_documents(kb: KnowledgeBase) -> dict[str, dict]:
    """The JSON Schemas the server publishes, by name: those `kineret-asp schema` prints."""
    from .jsonschema_export import NAMES, json_schema

    return {name: json_schema(kb, name) for name in NAMES}


def policies(kb: KnowledgeBase) -> dict:
    """The policies and versions of the KB tree, and the one this server decides with."""
    v = kb.vocabulary
    return {
        "in_use": {"policy": v.policy_id, "title": v.title, "drug": v.drug_name, "effective_from": v.effective_from, "effective_to": v.effective_to, "version": kb.path.name, "kb_sha256": kb.digest},
        "versions": [{"policy": f.policy, "version": f.name, "in_use": f.path.resolve() == kb.path.resolve()} for f in version_folders(kb.root)],
    }


async def read_body(request: Any, limit: int) -> bytes:
    """The whole body, refused as soon as it goes over the cap."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LimitExceeded()
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LimitExceeded()
        chunks.append(chunk)
    return b"".join(chunks)


class AsgiEndpoint:
    """An ASGI callable as a route endpoint (a plain function would be called with a Request)."""

    def __init__(self, app: Callable):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class Disconnected(Exception):
    """The client went away before its request body ended."""


async def asgi_lines(receive: Any, max_line: int, limit: int) -> AsyncIterator[Optional[bytes]]:
    """The lines of a streamed ASGI body (None for one over ``max_line``), as batch reads a file."""
    buffer = b""
    skipping = False
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        body = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(body)
        if size > limit:
            raise LimitExceeded()
        buffer += body
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                if len(buffer) > max_line and not skipping:
                    skipping = True
                    yield None
                if skipping:
                    buffer = b""
                break
            line, buffer = buffer[:cut], buffer[cut + 1:]
            if skipping:
                skipping = False
                continue
            yield None if len(line) > max_line else line.rstrip(b"\r")
    if buffer and not skipping:
        yield buffer.rstrip(b"\r")


def create_app(kb: Any = None, token: Optional[str] = None, body_limit: int = DEFAULT_BODY_LIMIT, time_limit: float = DEFAULT_TIME_LIMIT, batch_limit: int = DEFAULT_BATCH_LIMIT):
    """The ASGI application: one KB, decided in this process.

    ``kb`` is a KnowledgeBase (every case decided by it), a KB tree's folder,
    a :class:`~kineret_asp.versions.Chooser`, or None (the packaged KB): with a
    tree, each case is decided by the version in force on its date of service,
    as on the command line.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, Response

    from . import __version__
    from .versions import Chooser

    chooser = Chooser.of(kb)
    knowledge = chooser.default()
    v = knowledge.vocabulary
    w = v.word
    reports: "OrderedDict[str, Any]" = OrderedDict()
    app = FastAPI(title=f"kineret-asp: {v.policy_id} {v.title} ({v.drug_name})", version=__version__, description=f"{v.policy_id} {v.title}, effective {v.effective_from}, decided by clingo rules. Anything but an approval is routed to a clinical reviewer.")

    def errors(status: int, lines: list[str]) -> JSONResponse:
        return JSONResponse({"errors": lines}, status_code=status)

    class BearerGuard:
        """Refuse every request without the bearer token (pure ASGI: request streams pass through)."""

        def __init__(self, inner: Any):
            self.inner = inner

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and token is not None:
                given = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
                scheme, _, value = given.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                    response = JSONResponse({"errors": [w("api_unauthorized")]}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                    await response(scope, receive, send)
                    return
            await self.inner(scope, receive, send)

    app.add_middleware(BearerGuard)

    def handled(func: Callable) -> Callable:
        """The package's errors as HTTP answers: 422 for bad input, 413, 504, 500 for a broken KB."""

        @functools.wraps(func)
        async def wrapper(request: Request, *args: Any, **kwargs: Any):
            try:
                return await func(request, *args, **kwargs)
            except LimitExceeded:
                return errors(413, [w("api_too_large", limit=body_limit)])
            except CaseError as exc:
                return errors(422, exc.lines())
            except asyncio.TimeoutError:
                return errors(504, [w("api_timeout", seconds=f"{time_limit:g}")])
            except KbError as exc:
                return errors(500, [str(d) for d in exc.diagnostics])
            except KineretError as exc:
                return errors(422, [str(exc)])

        return wrapper

    async def json_body(request: Request, source: str) -> Any:
        from .case import parse_json_text

        return parse_json_text(await read_body(request, body_limit), source)

    async def solve(func: Callable[[], Any]) -> Any:
        return await run_limited(func, time_limit)

    def case_of(data: Any, source: str):
        """A case with the version chosen for it (a Bundle is read with the default version first), and a Bundle's notes."""
        from .case import validated
        from .fhir import is_fhir, read_input

        if is_fhir(data):
            case, notes = read_input(data, source, knowledge)
            return chooser.load(case)[0], notes
        choice = chooser.choose(data, source)
        return validated(data, source, choice.kb, choice), []

    @app.get("/health", summary="Liveness: the KB in use answers")
    async def health() -> dict:
        return {"status": "ok", "policy": v.policy_id, "effective_from": v.effective_from, "kb_sha256": knowledge.digest}

    @app.get("/policies", summary="The policies and versions of the KB, and the one in use")
    async def list_policies() -> dict:
        return policies(knowledge)

    @app.get("/schemas", summary="The names of the JSON Schemas published")
    async def list_schemas() -> dict:
        return {"schemas": sorted(schema_documents(knowledge))}

    @app.get("/schemas/{name}", summary="A JSON Schema (case: the case format)")
    async def get_schema(name: str):
        docs = schema_documents(knowledge)
        if name not in docs:
            return errors(404, [w("api_not_found", path=f"/schemas/{name}")])
        return JSONResponse(docs[name], media_type="application/schema+json")

    @app.post("/evaluate", summary="Decide a case (the case format, or a FHIR R4 Bundle); the decision format back")
    @handled
    async def evaluate_route(request: Request):
        from .api import evaluate
        from .fhir import annotate

        case, notes = case_of(await json_body(request, "<request>"), "<request>")
        decision = await solve(lambda: annotate(evaluate(case, chooser), notes))
        return JSONResponse(decision.to_dict())

    @app.post("/missing", summary="What documentation is missing for approval (as missing --format json)")
    @handled
    async def missing_route(request: Request):
        from .abduction import missing

        case, _ = case_of(await json_body(request, "<request>"), "<request>")
        result = await solve(lambda: missing(case, chooser))
        return JSONResponse(result.to_dict())

    @app.post("/what-if", summary="Decide a case before and after changes: {\"case\": ..., \"changes\": [...]}")
    @handled
    async def what_if_route(request: Request):
        from .whatif import what_if

        body = await json_body(request, "<request>")
        if not isinstance(body, dict) or "case" not in body or not isinstance(body.get("changes", []), list):
            raise CaseError("<request>", "", w("api_bad_body", where="body", what='{"case": {...}, "changes": [{"op", "path", "value"}, ...]}'))
        extra = sorted(set(body) - {"case", "changes"})
        if extra:
            raise CaseError("<request>", extra[0], "unknown field; expected case, changes")
        case, _ = case_of(body["case"], "<request>")
        result = await solve(lambda: what_if(case, body.get("changes", []), chooser))
        return JSONResponse(result.to_dict())

    async def batch_asgi(scope: dict, receive: Any, send: Any) -> None:
        """POST /batch as a plain ASGI app: the body is read while records are written."""
        import anyio

        from .batch import MAX_LINE_BYTES, BatchWorker

        worker = BatchWorker(chooser, "<request>", time_limit, cache=2000)
        if scope.get("method") != "POST":
            await JSONResponse({"errors": [w("api_not_found", path="GET /batch")]}, status_code=405)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-ndjson")]})

        async def flush(chunk: list) -> None:
            text = await anyio.to_thread.run_sync(worker.json_lines, chunk)
            await send({"type": "http.response.body", "body": text.encode("utf-8"), "more_body": True})

        number = 0
        chunk: list[tuple[int, Optional[bytes]]] = []
        try:
            async for line in asgi_lines(receive, MAX_LINE_BYTES, batch_limit):
                number += 1
                chunk.append((number, line))
                if len(chunk) >= BATCH_CHUNK:
                    await flush(chunk)
                    chunk = []
        except LimitExceeded:
            number += 1
            chunk.append((number, None))
        except Disconnected:
            return
        if chunk:
            await flush(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    from starlette.routing import Route

    app.router.routes.append(Route("/batch", AsgiEndpoint(batch_asgi), methods=["POST"]))
    documented = app.openapi

    def openapi() -> dict:
        schema = documented()
        schema.setdefault("paths", {})["/batch"] = {"post": {"summary": "NDJSON in, NDJSON out: one decision (or error) record per input line, in order", "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}, "responses": {"200": {"description": "one record per input line", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}}}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/cds-services", summary="CDS Hooks discovery: the order-sign and order-select services")
    async def cds_discovery() -> dict:
        from .cds import discovery

        return discovery(knowledge)

    @app.post("/cds-services/{service}", summary="A CDS Hooks call: CRD cards and the coverage-information system action")
    @handled
    async def cds_call(request: Request, service: str):
        from .abduction import missing
        from .cds import answer, hook_of

        if hook_of(knowledge, service) is None:
            return errors(404, [w("api_no_service", id=service)])
        body = await json_body(request, "<cds-hooks request>")
        base = str(request.base_url)
        result = await solve(lambda: answer(body, knowledge, base, lambda case: missing(case, knowledge)))
        if result.assertion is not None:
            reports[result.assertion] = result.decision
            while len(reports) > REPORTS_KEPT:
                reports.popitem(last=False)
        return JSONResponse(result.response)

    @app.get("/reports/{assertion}", summary="The decision report behind a CDS card (text; ?format=json for the decision format)")
    async def report(assertion: str, format: str = "text"):  # noqa: A002 - the query parameter's name
        from .decision import render_text

        decision = reports.get(assertion)
        if decision is None:
            return errors(404, [w("api_not_found", path=f"/reports/{assertion}")])
        if format == "json":
            return decision.to_dict()
        return PlainTextResponse(render_text(decision, v))

    @app.post("/questionnaire/next", summary="The next question for a partial case: {\"case\": {...}, \"declined\": [changes]}")
    @handled
    async def questionnaire_next(request: Request):
        from .questionnaire import next_step

        body = await json_body(request, "<request>")
        if not isinstance(body, dict) or not isinstance(body.get("case", {}), dict) or not isinstance(body.get("declined", []), list):
            raise CaseError("<request>", "", w("api_bad_body", where="body", what='{"case": {...}, "declined": [changes]}'))
        step = await solve(lambda: next_step(body.get("case", {}), body.get("declined", []), knowledge))
        return JSONResponse(step.to_dict(knowledge))

    @app.post("/Questionnaire/$next-question", summary="DTR/SDC $next-question: a QuestionnaireResponse with a contained Questionnaire")
    @handled
    async def fhir_next_question(request: Request):
        from .questionnaire import next_question

        body = await json_body(request, "<$next-question>")
        result = await solve(lambda: next_question(body, knowledge))
        return JSONResponse(result, media_type="application/fhir+json")

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return errors(404, [w("api_not_found", path=request.url.path)])

    return app


def read_token(path: Optional[Path]) -> Optional[str]:
    """The bearer token of a token file (its first line); None without a file."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KineretError(f"{path}: cannot read the token file: {exc}") from None
    if not text or not text[0].strip():
        raise KineretError(f"{path}: the token file is empty")
    return text[0].strip()


def serve(kb: Any, host: str = "127.0.0.1", port: int = 8000, token: Optional[str] = None, body_limit: int = DEFAULT_BODY_LIMIT, time_limit: float = DEFAULT_TIME_LIMIT) -> None:
    """Run the server until SIGINT or SIGTERM; in-flight requests finish first."""
    import uvicorn

    from .api import resident_for
    from .program import compiled

    class Server(uvicorn.Server):
        """uvicorn's server, exiting with status 0 after a graceful stop (it re-raises the signal)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    from .versions import Chooser

    chooser = Chooser.of(kb)
    for version in chooser.versions():
        resident_for(version)  # ground every version before the first request
        compiled(version).abduction_text  # and build the program `missing` grounds
    app = create_app(chooser, token, body_limit, time_limit)
    Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=60)).run()

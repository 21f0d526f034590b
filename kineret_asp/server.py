"""``kineret-asp serve``: the policy as an HTTP service (FastAPI on uvicorn).

Requests and responses use the JSON of the command line: a case (or a FHIR
Bundle) in, the decision format out; ``missing`` and ``what-if`` answer as
``--format json`` does; ``batch`` streams NDJSON both ways, one record per
input line, never a line lost. Every error of the JSON API is ``{"errors":
[lines]}`` with its status (400, 401, 403, 404, 405, 413, 422, 500, 503,
504): bad input is 422 with the command line's one-line messages. The
FHIR-facing routes (CDS Hooks and Da Vinci CRD, :mod:`kineret_asp.interop.crd`;
the DTR adaptive questionnaire, :mod:`kineret_asp.interop.dtr`) answer errors
as OperationOutcomes. Every decision is kept in the decision log
(:mod:`kineret_asp.decision_log`), which issues the ids and
prior-authorization numbers. Every request body is capped; before any route
a request passes the Host, CORS and authentication checks of
:mod:`kineret_asp.web.guard` (a static token, CDS Hooks JWTs:
:mod:`kineret_asp.web.auth`).

The work of every request (reading the case, deciding, ``missing``, a batch
chunk) runs in a pool of worker processes (:mod:`kineret_asp.server_pool`,
``--workers``, one per core by default), each started warm from the loaded
KB: a request has a time limit, and at the limit its worker is killed and
replaced (504), so that nothing goes on computing for an answer already
given up; a worker has a memory limit; the queue is bounded (503 when full).
The server's start (loading and grounding every version) is bounded too:
it is tried first in a worker stopped at ``--start-time-limit`` and
``--memory-limit``.
"""

import contextlib
import json
import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Optional, Sequence

from .errors import CaseError, KbError, KineretError, NotFound
from .knowledge.base import KnowledgeBase
from .knowledge.layout import version_folders
from .limits import DEFAULT_MEMORY_MB, MEMORY, TIMEOUT, Limits
from .web.guard import json_bytes

DEFAULT_BODY_LIMIT = 1_000_000
DEFAULT_BATCH_LIMIT = 256 * 1024 * 1024
DEFAULT_TIME_LIMIT = 10.0
DEFAULT_START_LIMIT = 120.0
BATCH_CHUNK = 200
LOG = logging.getLogger("kineret_asp.server")
CHUNK_MIN = 24
"""Evaluate requests waiting together are decided in one grounding from this many on (one at a
time from the warm engine below: about 1.3 ms a case against 0.85 at 32; measured, bench figures)."""
ANSWERS_KEPT = 2000
"""Answers a worker remembers, by route and request body: the same request again is answered at once.
Exact: a worker's KB never changes, and no answer of these routes reads the clock (CDS Hooks answers
carry today's date, and are never remembered). ``--no-answer-cache`` turns it off."""
REMEMBERED = frozenset({"evaluate", "missing", "what-if", "questionnaire", "next-question"})
MAX_REMEMBERED_BODY = 64 * 1024
QUEUE_PER_WORKER = 64
"""Requests that may wait for a worker, per worker, before more are refused with 503 (--queue)."""


class LimitExceeded(Exception):
    """A request body went over its cap."""


class ServeError(KineretError):
    """The server cannot start: ``code`` is the exit code (1: the environment, 2: the KB, 3: a limit)."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


OVER_CAP = object()
"""A line of a batch stream that came after the stream passed its cap (its bytes are not kept)."""


def scrub(content: Any) -> Any:
    """An answer without this machine's folders: every provenance's ``kb`` (the KB's absolute path) named by the
    folder's own name instead (:func:`~kineret_asp.cases.versions.served_kb`), so that it stays the decision format."""
    from .cases.versions import served_kb

    if isinstance(content, dict):
        provenance = "rules_sha256" in content and isinstance(content.get("kb"), str)
        return {k: served_kb(v) if provenance and k == "kb" else scrub(v) for k, v in content.items()}
    if isinstance(content, list):
        return [scrub(v) for v in content]
    return content


def schema_documents(kb: KnowledgeBase) -> dict[str, dict]:
    """The JSON Schemas the server publishes, by name: those `kineret-asp schema` prints."""
    from .author.json_schemas import NAMES, json_schema

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


async def asgi_lines(receive: Any, max_line: int, limit: int) -> AsyncIterator[Any]:
    """The lines of a streamed ASGI body (None for one over ``max_line``), as batch reads a file.

    Past ``limit`` bytes of body the stream is still read to its end, but
    each line not whole within the cap is :data:`OVER_CAP` (its bytes are
    not kept): every line received gets its record.
    """
    buffer = b""
    skipping = False
    size = 0
    more = True
    over = False
    current = False  # past the cap: the line being read has its record already
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if not over:
            room = limit - size
            size += len(body)
            head, body = (body, b"") if size <= limit else (body[:room], body[room:])
            buffer += head
            while True:
                cut = buffer.find(b"\n")
                if cut < 0:
                    if len(buffer) > max_line and not skipping:
                        skipping = True
                        yield None
                    if skipping:
                        buffer = b""
                    break
                line, buffer = buffer[:cut], buffer[cut + 1 :]
                if skipping:
                    skipping = False
                    continue
                yield None if len(line) > max_line else line.rstrip(b"\r")
            if size <= limit:
                continue
            over = True
            current = skipping  # an overlong line being skipped has its record
            if buffer and not skipping:
                yield OVER_CAP  # the line the cap cut
                current = True
            buffer = b""
        for k, segment in enumerate(body.split(b"\n")):
            if k:  # a line ended
                if not current:
                    yield OVER_CAP
                current = False
            if segment and not current:
                yield OVER_CAP
                current = True
    if buffer and not skipping and not over:
        yield buffer.rstrip(b"\r")


class Handler:
    """What a worker process does with a message of jobs: each job's (status, body, media type, extra).

    Runs where the pool runs it (a worker process, or a thread of an
    embedding program); everything it needs was loaded before the workers
    were forked.
    """

    def __init__(self, chooser: Any, time_limit: float, answers: int = ANSWERS_KEPT, settings: Any = None, log: Any = None):
        from .interop.crd import Settings
        from .memo import Memo

        self.chooser = chooser
        self.knowledge = chooser.default()
        self.time_limit = time_limit
        self._batch: Any = None
        self.answers: Memo = Memo(answers)
        self.settings = settings or Settings()
        self.log = log  # the decision log (None: decisions are not kept)

    def __call__(self, message: list) -> list:
        """The replies to a message of jobs; the same request again gets the answer it got (:data:`ANSWERS_KEPT`)."""
        replies: list = [None] * len(message)
        todo = []
        for i, (kind, payload) in enumerate(message):
            known = self.answers.get((kind, payload)) if self._rememberable(kind, payload) else None
            if known is None:
                todo.append(i)
            else:
                replies[i] = known
        if len(todo) >= CHUNK_MIN and all(message[i][0] == "evaluate" for i in todo):
            done = self._evaluate_chunk([message[i][1] for i in todo])
        else:
            done = [self.one(*message[i]) for i in todo]
        for i, reply in zip(todo, done):
            replies[i] = reply
            kind, payload = message[i]
            if self._rememberable(kind, payload) and reply[0] < 500:
                self.answers.put((kind, payload), reply)
        if self.log is not None:
            replies = [self._logged(kind, payload, reply) for (kind, payload), reply in zip(message, replies)]
        return replies

    def _logged(self, kind: str, payload: Any, reply: tuple) -> tuple:
        """An evaluate answer recorded in the decision log (a remembered answer too: each request is a decision made);
        its record's id goes back in a header."""
        status, body, media, extra = reply
        if kind != "evaluate" or status != 200 or not isinstance(extra, tuple) or extra[:1] != ("log",):
            return reply
        from .decision_log import Entry, LogError

        _, case, digest = extra
        decision = json.loads(body)
        rules = (decision.get("provenance") or {}).get("rules_sha256")
        kb = next((k for k in self.chooser.versions() if k.rules_sha256 == rules), None)  # its rule files are kept once
        try:
            record = self.log.record(Entry("evaluate", case, decision, None, None, digest), kb)
        except LogError as exc:
            return self.errors(503, [self.word("api_log_failed", why=str(exc))])
        return (status, body, media, {"headers": {"X-Decision-Id": record.id}})

    def _rememberable(self, kind: str, payload: Any) -> bool:
        return self.answers.size > 0 and kind in REMEMBERED and isinstance(payload, bytes) and len(payload) <= MAX_REMEMBERED_BODY

    def one(self, kind: str, payload: Any) -> tuple:
        from .decision_log import LogError
        from .interop.operation_outcome import FHIR_JSON, FhirProblem

        try:
            return getattr(self, "do_" + kind.replace("-", "_"))(payload)
        except FhirProblem as exc:
            return (exc.status, json_bytes(exc.resource()), FHIR_JSON, None)
        except LogError as exc:
            return self.errors(503, [self.word("api_log_failed", why=str(exc))])
        except CaseError as exc:
            return self.errors(422, exc.lines())
        except NotFound as exc:
            return self.errors(404, [str(exc)])
        except KbError as exc:
            return self.errors(500, [str(d) for d in exc.diagnostics])
        except KineretError as exc:
            return self.errors(422, [str(exc)])
        except RecursionError:
            return self.errors(422, [self.word("api_bad_request", where="<request>", message="nested too deeply")])
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - one answer in the API's format, never a traceback
            return self.errors(500, [self.word("api_failed", detail=f"{type(exc).__name__}: {exc}"[:300])])

    def word(self, key: str, **values: Any) -> str:
        return self.knowledge.vocabulary.word(key, **values)

    @staticmethod
    def errors(status: int, lines: list) -> tuple:
        return (status, json_bytes({"errors": lines}), "application/json", None)

    @staticmethod
    def ok(content: Any, media_type: str = "application/json", extra: Any = None) -> tuple:
        return (200, json_bytes(scrub(content)), media_type, extra)

    def json(self, body: bytes, source: str = "<request>") -> Any:
        from .cases.files import parse_json_text

        return parse_json_text(body, source)

    def load(self, data: Any, source: str = "<request>"):
        """A request's case (or FHIR Bundle) read by the one loader, with the version chosen for it."""
        from .cases.load import load

        return load(data, self.chooser, shown=source)

    def _log_extra(self, case: Any, data: Any, body: bytes) -> Any:
        """What the decision log keeps of an evaluate request (None without a log): the case, and a FHIR input's hash."""
        if self.log is None:
            return None
        from .cases.fhir_bundle import is_fhir
        from .decision_log import sha256_of

        return ("log", case.to_dict(), sha256_of(body) if is_fhir(data) else None)

    def do_evaluate(self, body: bytes) -> tuple:
        from .api import decide

        data = self.json(body)
        loaded = self.load(data)
        return self.ok(decide(loaded).to_dict(), extra=self._log_extra(loaded.case, data, body))

    def _evaluate_chunk(self, bodies: list) -> list:
        """Many evaluate requests at once: read each, decide the good ones in one grounding per version."""
        from .api import engine_for
        from .decisions.decision import build_decision, with_input_notes
        from .engine.chunked import CaseFailure

        replies: list = [None] * len(bodies)
        chosen = []
        for i, body in enumerate(bodies):
            try:
                data = self.json(body)
                loaded = self.load(data)
                chosen.append((i, loaded, self._log_extra(loaded.case, data, body)))
            except Exception:  # noqa: BLE001 - answered one by one below, in the same words
                replies[i] = self.one("evaluate", body)
        groups: dict[int, list] = {}
        for item in chosen:
            groups.setdefault(id(item[1].choice.kb), []).append(item)
        for members in groups.values():
            kb = members[0][1].choice.kb
            outputs = engine_for(kb).run([loaded.case.atoms() for _, loaded, _ in members])
            for (i, loaded, extra), out in zip(members, outputs):
                if isinstance(out, CaseFailure):
                    replies[i] = self.one("evaluate", bodies[i])  # the warm engine says why, as alone
                    continue
                replies[i] = self.ok(with_input_notes(build_decision(loaded.case, out, kb, loaded.choice.route), loaded.notes).to_dict(), extra=extra)
        return replies

    def do_missing(self, body: bytes) -> tuple:
        from .explain.missing import missing

        case = self.load(self.json(body)).case
        return self.ok(missing(case, self.chooser).to_dict())

    def do_what_if(self, body: bytes) -> tuple:
        from .explain.whatif import what_if

        data = self.json(body)
        if not isinstance(data, dict) or "case" not in data or not isinstance(data.get("changes", []), list):
            raise CaseError("<request>", "", self.word("api_bad_body", where="body", what='{"case": {...}, "changes": [{"op", "path", "value"}, ...]}'))
        extra = sorted(set(data) - {"case", "changes"})
        if extra:
            raise CaseError("<request>", extra[0], "unknown field; expected case, changes")
        case = self.load(data["case"]).case
        return self.ok(what_if(case, data.get("changes", []), self.chooser).to_dict())

    def do_questionnaire(self, body: bytes) -> tuple:
        from .interop.questionnaire import next_step

        data = self.json(body)
        if not isinstance(data, dict) or not isinstance(data.get("case", {}), dict) or not isinstance(data.get("declined", []), list):
            raise CaseError("<request>", "", self.word("api_bad_body", where="body", what='{"case": {...}, "declined": [changes]}'))
        return self.ok(next_step(data.get("case", {}), data.get("declined", []), self.knowledge).to_dict(self.knowledge))

    def fhir_json(self, body: bytes, source: str) -> Any:
        """A FHIR request's JSON: what does not parse is 400 with an OperationOutcome."""
        from .interop.operation_outcome import FhirProblem

        try:
            return self.json(body, source)
        except CaseError as exc:
            raise FhirProblem.from_case_error(exc, 400, "structure") from None

    def version_today(self) -> KnowledgeBase:
        """The version in force today: a DTR dialogue is about an order written now, never decided by a version not yet in force."""
        import datetime

        return self.chooser.on(datetime.date.today().isoformat())

    def do_next_question(self, body: bytes) -> tuple:
        from .interop.dtr import next_question

        return self.ok(next_question(self.fhir_json(body, "<$next-question>"), self.version_today(), self.settings.base_url, self.log), "application/fhir+json")

    def do_questionnaire_package(self, body: bytes) -> tuple:
        from .interop.dtr import package

        return self.ok(package(self.fhir_json(body, "<$questionnaire-package>"), self.version_today(), self.settings.base_url, self.log), "application/fhir+json")

    def do_cds(self, payload: tuple) -> tuple:
        """A CDS Hooks call (Da Vinci CRD): the answer's bytes keep the order as it was sent (:mod:`kineret_asp.interop.crd`)."""
        from .explain.missing import missing
        from .interop.crd import answer, response_bytes

        body, hook, fetched = payload
        result = answer(body, hook, self.knowledge, self.settings, self.log, missing, fetched, chooser=self.chooser)
        return (result.status, response_bytes(result.response), "application/json", None)

    def do_warm(self, what: Any) -> tuple:
        """A new worker's first job: answer the example cases once (see :func:`_warm`), nothing kept;
        ``"decide"``: only decide them (a worker replacing a killed one, quickly)."""
        _warm(self.chooser, routes=("evaluate",) if what == "decide" else ("evaluate", "missing", "what-if"))
        return (200, b"", "text/plain", None)

    def do_batch(self, lines: list) -> tuple:
        from .batch.run import BatchWorker

        if self._batch is None:
            self._batch = BatchWorker(self.chooser, "<request>", self.time_limit, cache=2000, log=self.log, served=True)
        text, errors = self._batch.decide(lines)
        return (200, text.encode("utf-8"), "application/x-ndjson", errors)

    # The reviewer's workbench (GET /review): a case as opened (or a logged request's number) plus a change list in,
    # its review section out; a change set kept beside a logged request as a reviewer's note.
    def do_workbench(self, body: bytes) -> tuple:
        from .explain.workbench import answer

        return self.ok(answer(self.json(body), self.chooser, self.log))

    def do_workbench_page(self, body: bytes) -> tuple:
        from .explain.workbench import printable

        return (200, printable(self.json(body), self.chooser, self.log).encode("utf-8"), "text/html; charset=utf-8", None)

    def do_note(self, payload: tuple) -> tuple:
        from urllib.parse import quote

        from .explain.workbench import save_note

        key, body = payload
        note = save_note(key, self.json(body), self.chooser, self.log)
        where = f"/decisions/{quote(note.decision_id, safe='')}/notes/{quote(note.id, safe='')}"
        return (201, json_bytes(scrub(note.to_dict())), "application/json", {"headers": {"Location": where}})


def create_app(
    kb: Any = None,
    token: Optional[str] = None,
    body_limit: int = DEFAULT_BODY_LIMIT,
    time_limit: float = DEFAULT_TIME_LIMIT,
    batch_limit: int = DEFAULT_BATCH_LIMIT,
    workers: int = 0,
    memory_limit: Optional[int] = DEFAULT_MEMORY_MB,
    queue_limit: Optional[int] = None,
    answers: int = ANSWERS_KEPT,
    *,
    base_url: Optional[str] = None,
    allowed_hosts: Optional[Sequence[str]] = None,
    cors_origins: Sequence[str] = (),
    auth: Any = None,
    db: Any = None,
    fhir_servers: Sequence[str] = (),
    advisory_card: bool = False,
):
    """The ASGI application.

    ``kb`` is a KnowledgeBase (every case decided by it), a KB tree's folder,
    a :class:`~kineret_asp.cases.versions.Chooser`, or None (the packaged KB): with a
    tree, each case is decided by the version in force on its date of service,
    as on the command line. With ``workers`` (``serve`` gives one per core)
    requests are decided in that many worker processes, each request's worker
    killed at ``time_limit`` and capped at ``memory_limit`` MB, at most
    ``queue_limit`` requests waiting (503 past it); with 0, in a thread of
    this process (an application embedded in a test or another program).
    Each worker remembers its last ``answers`` answers by request (0: none).

    Integration (docs/integration.md): ``base_url`` is where clients reach
    the server (card links, the Questionnaire's canonical URL, a JWT's
    ``aud``); ``allowed_hosts`` the Host names it answers to (None: any);
    ``cors_origins`` the browser origins allowed; ``auth`` an
    :class:`~kineret_asp.web.auth.AuthConfig` (JWT issuers; ``token`` is its
    static token); ``db`` the decision log (a URL or a
    :class:`~kineret_asp.decision_log.DecisionLog`; None: a private SQLite file
    for this application; False: no log); ``fhir_servers`` the FHIR servers
    missing prefetch may be fetched from; ``advisory_card``: a CDS card beside
    the coverage information.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from . import __version__
    from .cases.versions import Chooser
    from .decision_log import DecisionLog
    from .interop.crd import Settings
    from .server_pool import InProcess, JobStopped, Pool, PoolBusy
    from .web.auth import AuthConfig, Verifier
    from .web.guard import Guard, error_body

    chooser = Chooser.of(kb)
    knowledge = chooser.default()
    v = knowledge.vocabulary
    w = v.word
    settings = Settings(base_url or "http://127.0.0.1:8000", advisory_card)
    private_db: Any = None
    if db is None:  # zero set-up: a private SQLite file for this application
        import tempfile

        # removed when the application closes, or when it is dropped or the process ends without closing
        private_db = tempfile.TemporaryDirectory(prefix="kineret-asp-log-", ignore_cleanup_errors=True)
        db = str(Path(private_db.name) / "decisions.sqlite3")
    log: Optional[DecisionLog] = None if db is False else db if isinstance(db, DecisionLog) else DecisionLog(str(db))
    handler = Handler(chooser, time_limit, answers, settings, log)
    queue = queue_limit if queue_limit is not None else QUEUE_PER_WORKER * max(1, workers)
    runner: Any = Pool(handler, workers, Limits(None, memory_limit), queue, CHUNK_MIN).start(("warm", None), DEFAULT_START_LIMIT, ("warm", "decide")) if workers > 0 else InProcess(handler)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runner.close()
            if private_db is not None:
                private_db.cleanup()

    app = FastAPI(
        title=f"kineret-asp: {v.policy_id} {v.title} ({v.drug_name})",
        version=__version__,
        description=f"{v.policy_id} {v.title}, effective {v.effective_from}, decided by clingo rules. Anything but an approval is routed to a clinical reviewer.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.pool = runner
    app.state.log = log
    app.state.private_db = private_db  # held by the application, so its folder lives as long as it does

    def errors(status: int, lines: list[str], headers: Optional[dict] = None, path: str = "") -> Response:
        body, media = error_body(path, status, lines)
        return Response(body, status_code=status, headers=headers, media_type=media)

    config = auth if auth is not None else AuthConfig(token)
    if auth is not None and token is not None and auth.token is None:
        config = AuthConfig(token, auth.issuers, auth.leeway)
    verifier = Verifier(config, settings.base_url)
    app.add_middleware(Guard, word=w, allowed_hosts=allowed_hosts, cors_origins=cors_origins, verifier=verifier)

    def stopped(exc: JobStopped, path: str = "") -> Response:
        if exc.status == TIMEOUT:
            return errors(504, [w("api_timeout", seconds=f"{time_limit:g}")], path=path)
        if exc.status == MEMORY:
            return errors(503, [w("api_memory", megabytes=memory_limit)], path=path)
        return errors(500, [w("api_failed", detail=exc.detail or w("api_worker_died"))], path=path)

    @app.get("/health", summary="Liveness: the KB in use answers")
    async def health() -> dict:
        return {"status": "ok", "policy": v.policy_id, "effective_from": v.effective_from, "kb_sha256": knowledge.digest}

    @app.get("/policies", summary="The policies and versions of the KB, and the one in use")
    async def list_policies() -> dict:
        return policies(knowledge)

    documents = schema_documents(knowledge)

    @app.get("/schemas", summary="The names of the JSON Schemas published")
    async def list_schemas() -> dict:
        return {"schemas": sorted(documents)}

    @app.get("/schemas/{name}", summary="A JSON Schema (case: the case format)")
    async def get_schema(name: str):
        if name not in documents:
            return errors(404, [w("api_not_found", path=f"/schemas/{name}")])
        return JSONResponse(documents[name], media_type="application/schema+json")

    async def body_of(receive: Any, limit: int) -> bytes:
        """A request's whole body from its ASGI messages, refused as soon as it goes over the cap."""
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise LimitExceeded()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def reply(send: Any, status: int, body: bytes, media_type: str, headers: Optional[dict] = None) -> None:
        raw = [(b"content-type", media_type.encode("latin-1")), (b"content-length", str(len(body)).encode("latin-1"))]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def refuse(send: Any, status: int, lines: list, headers: Optional[dict] = None, path: str = "") -> None:
        body, media = error_body(path, status, lines)
        await reply(send, status, body, media, headers)

    def worked(kind: str, job: Optional[Callable] = None, failure: Optional[Callable] = None) -> Callable:
        """A POST route as a plain ASGI app (the request path the server answers most: no framework work
        beyond routing): the body read within its cap, the job done by the pool, its answer written as made.

        ``job(scope, body)``: the job's payload (default: the body), or an
        :class:`Answered` given without one; ``failure(scope, body, why)``: the
        answer when the job was stopped or failed (CRD: indeterminate), or
        None. A client that goes away is one line in the log, never a traceback.
        """

        async def endpoint(scope: dict, receive: Any, send: Any) -> None:
            path = scope.get("path", "")
            if scope.get("method") != "POST":
                await refuse(send, 405, [w("api_method", method=scope.get("method"), path=path, allowed="POST")], {"Allow": "POST"}, path)
                return
            headers = dict(scope.get("headers") or [])
            declared = headers.get(b"content-length", b"").decode("latin-1")
            body = b""
            try:
                if declared.isdigit() and int(declared) > body_limit:
                    raise LimitExceeded()
                body = await body_of(receive, body_limit)
                payload = await job(scope, body) if job is not None else body
                if isinstance(payload, Answered):
                    await reply(send, *payload.reply)
                    return
                status, out, media_type, extra = await runner.submit(kind, payload, time_limit)
            except Disconnected:
                LOG.warning(w("api_disconnected", path=path))
                return
            except LimitExceeded:
                await refuse(send, 413, [w("api_too_large", limit=body_limit)], path=path)
                return
            except PoolBusy:
                await refuse(send, 503, [w("api_busy", queued=queue)], {"Retry-After": "1"}, path)
                return
            except JobStopped as exc:
                rescued = await failure(scope, body, exc.status) if failure is not None else None
                if rescued is not None:
                    await reply(send, 200, rescued, "application/json")
                    return
                response = stopped(exc, path)
                await reply(send, response.status_code, response.body, response.media_type or "application/json")
                return
            if status >= 500 and failure is not None:
                LOG.warning(w("api_failed", detail=out.decode("utf-8", "replace")[:300]))
                rescued = await failure(scope, body, str(status))
                if rescued is not None:
                    await reply(send, 200, rescued, "application/json")
                    return
            await reply(send, status, out, media_type, extra.get("headers") if isinstance(extra, dict) else None)

        return endpoint

    from starlette.routing import Route

    POSTED = {
        "/evaluate": ("evaluate", "Decide a case (the case format, or a FHIR R4 Bundle); the decision format back"),
        "/missing": ("missing", "What documentation is missing for approval (as missing --format json)"),
        "/what-if": ("what-if", 'Decide a case before and after changes: {"case": ..., "changes": [...]}'),
        "/questionnaire/next": ("questionnaire", 'The next question for a partial case: {"case": {...}, "declined": [changes]}'),
        "/Questionnaire/$next-question": (
            "next-question",
            "Da Vinci DTR / SDC $next-question: a QuestionnaireResponse (bare, or as the Parameters questionnaire-response) with its contained Questionnaire; the next question, or the completed form",
        ),
        "/Questionnaire/$questionnaire-package": (
            "questionnaire-package",
            "Da Vinci DTR $questionnaire-package: Parameters (coverage, order, questionnaire, context) in; the adaptive Questionnaire and a pre-filled QuestionnaireResponse out",
        ),
    }
    for path, (kind, _) in POSTED.items():
        app.router.routes.append(Route(path, AsgiEndpoint(worked(kind)), methods=["POST"]))

    async def batch_asgi(scope: dict, receive: Any, send: Any) -> None:
        """POST /batch as a plain ASGI app: the body is read while records are written."""
        from .batch.run import CASE_ALLOWANCE, CASE_ALLOWANCE_ALONE, CHUNK_ALLOWANCE, MAX_LINE_BYTES, BatchRecord, error_record
        from .safetext import safe_json

        if scope.get("method") != "POST":
            await errors(405, [w("api_method", method=scope.get("method"), path="/batch", allowed="POST")], {"Allow": "POST"})(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > batch_limit:  # refused before any record
            await errors(413, [w("api_too_large", limit=batch_limit)])(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-ndjson")]})
        encode = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

        async def decided(lines: list) -> str:
            seconds = time_limit + CHUNK_ALLOWANCE + len(lines) * CASE_ALLOWANCE
            try:
                return (await runner.submit("batch", lines, seconds, queued=False))[1].decode("utf-8")
            except JobStopped as exc:
                if len(lines) == 1:
                    ((number, raw),) = lines
                    return error_record(number, raw, f"<request>:{number}: not decided: stopped at {Limits(time_limit, memory_limit).describe(exc.status, options=False)}")
            texts = []  # the chunk again, one line at a time: the line at fault alone becomes an error record
            for number, raw in lines:
                try:
                    texts.append((await runner.submit("batch", [(number, raw)], time_limit + CASE_ALLOWANCE_ALONE, queued=False))[1].decode("utf-8"))
                except JobStopped as exc:
                    what = Limits(time_limit, memory_limit).describe(exc.status, options=False)
                    texts.append(error_record(number, raw, f"<request>:{number}: not decided: stopped at {what}"))
            return "".join(texts)

        async def flush(chunk: list) -> None:
            lines = [(n, line) for n, line in chunk if line is not OVER_CAP]
            text = await decided(lines) if lines else ""
            for n, line in chunk:
                if line is OVER_CAP:
                    message = w("api_batch_cap", where=f"<request>:{n}", limit=batch_limit)
                    text += safe_json(encode(BatchRecord(n, None, error=message).to_dict())) + "\n"
            await send({"type": "http.response.body", "body": text.encode("utf-8"), "more_body": True})

        number = 0
        chunk: list[tuple[int, Any]] = []
        try:
            async for line in asgi_lines(receive, MAX_LINE_BYTES, batch_limit):
                number += 1
                chunk.append((number, line))
                if len(chunk) >= BATCH_CHUNK:
                    await flush(chunk)
                    chunk = []
        except Disconnected:
            return
        if chunk:
            await flush(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    app.router.routes.append(Route("/batch", AsgiEndpoint(batch_asgi), methods=["POST"]))

    @app.get("/cds-services", summary="CDS Hooks discovery: a service per hook, with prefetch templates and the Da Vinci CRD version")
    async def cds_discovery() -> dict:
        from .interop.crd import discovery

        return discovery(knowledge)

    async def hook_job(scope: dict, body: bytes) -> Any:
        """The CDS call's job: the hook, and the prefetch fetched from an allowed FHIR server (in a thread)."""
        from .interop.crd import hook_of
        from .interop.operation_outcome import FHIR_JSON, FhirProblem
        from .interop.prefetch import fetch_missing

        service = scope.get("path", "").rsplit("/", 1)[-1]
        hook = hook_of(knowledge, service)
        if hook is None:
            return Answered(404, *error_body(scope.get("path", ""), 404, [w("api_no_service", id=service)]))
        fetched: dict = {}
        if fhir_servers:
            import anyio

            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                data = None  # the worker says why, as for any request
            if data is not None:
                try:
                    fetched = await anyio.to_thread.run_sync(fetch_missing, data, knowledge, list(fhir_servers))
                except FhirProblem as exc:
                    return Answered(exc.status, json_bytes(exc.resource()), FHIR_JSON)
        return (body, hook, fetched)

    async def hook_failed(scope: dict, body: bytes, why: str) -> Optional[bytes]:
        """CRD resp-43: a technical failure is coverage 'indeterminate' on the order (read here, in the server's process)."""
        import anyio

        from .interop.crd import hook_of, indeterminate

        hook = hook_of(knowledge, scope.get("path", "").rsplit("/", 1)[-1])
        if hook is None:
            return None
        LOG.warning(w("api_indeterminate", path=scope.get("path", ""), why=why))
        return await anyio.to_thread.run_sync(indeterminate, body, hook, knowledge, settings, log, why)

    app.router.routes.append(Route("/cds-services/{service}", AsgiEndpoint(worked("cds", hook_job, hook_failed)), methods=["POST"]))

    @app.get("/Questionnaire/{qid}", summary="The adaptive Questionnaire at its canonical URL (Da Vinci DTR AdaptiveQuestionnaire-Search)")
    async def get_questionnaire(qid: str):
        from .interop.dtr import _qid, questionnaire

        if qid != _qid(knowledge):
            return errors(404, [w("api_not_found", path=f"/Questionnaire/{qid}")], path="/Questionnaire")
        return Response(json_bytes(questionnaire(handler.version_today(), settings.base_url)), media_type="application/fhir+json")

    async def logged(key: str) -> Any:
        if log is None:
            return None
        import anyio

        return await anyio.to_thread.run_sync(log.get, key)

    @app.get("/decisions/{key}", summary="A logged decision by its id (the coverage-assertion-id) or its prior-authorization number: request, decision, provenance, time")
    async def get_decision(key: str):
        record = await logged(key)
        if record is None:
            return errors(404, [w("api_no_decision", id=key)])
        return Response(json_bytes(record.to_dict()), media_type="application/json")

    async def noted(key: str, note: Optional[str] = None) -> Any:
        """The record ``key`` names and its notes (only ``note`` when given), or the error answer: no log, no record."""
        if log is None:
            return errors(404, [w("api_no_log", number=key[:100])])
        record = await logged(key)
        if record is None:
            return errors(404, [w("api_no_decision", id=key[:100])])
        import anyio

        return record, await anyio.to_thread.run_sync(log.notes, record.id, note)

    @app.get("/decisions/{key}/notes", summary=w("api_doc_notes"))
    async def get_notes(key: str):
        found = await noted(key)
        if isinstance(found, Response):
            return found
        record, notes = found
        return Response(json_bytes({"decision_id": record.id, "prior_authorization_number": record.pa_number, "notes": [n.to_dict() for n in notes]}), media_type="application/json")

    @app.get("/decisions/{key}/notes/{note}", summary=w("api_doc_note"))
    async def get_note(key: str, note: str):
        found = await noted(key, note)
        if isinstance(found, Response):
            return found
        record, notes = found
        if not notes:
            return errors(404, [w("api_no_note", note=note[:100], id=record.id)])
        return Response(json_bytes(notes[0].to_dict()), media_type="application/json")

    async def note_job(scope: dict, body: bytes) -> Any:
        """POST /decisions/{key}/notes: without a log, 404 at once; else the worker applies the changes and keeps the note."""
        key = scope.get("path_params", {}).get("key", "")
        if log is None:
            return Answered(404, *error_body(scope.get("path", ""), 404, [w("api_no_log", number=key[:100])]))
        return (key, body)

    app.router.routes.append(Route("/decisions/{key}/notes", AsgiEndpoint(worked("note", note_job)), methods=["POST"]))

    @app.get("/reports/{assertion}", summary="The decision report of a logged decision (text; ?format=json for the decision format)")
    async def report(assertion: str, format: str = "text"):  # noqa: A002 - the query parameter's name
        record = await logged(assertion)
        if record is None or not record.decision:
            return errors(404, [w("api_not_found", path=f"/reports/{assertion}")])
        if format == "json":
            return Response(json_bytes(record.decision), media_type="application/json")
        return PlainTextResponse(record.report or "")

    from .web.openapi import add_docs

    add_docs(app, knowledge, documents, POSTED)

    # The reviewer's workbench: its page, script and style (GET), and two POST routes answered in the pool.
    from .explain import workbench

    bench_page = workbench.page(knowledge).encode("utf-8")
    bench_files = {
        "/review": (bench_page, "text/html; charset=utf-8"),
        "/review/workbench.js": (workbench.SCRIPT.encode("utf-8"), "text/javascript; charset=utf-8"),
        "/review/workbench.css": (workbench.STYLE.encode("utf-8"), "text/css; charset=utf-8"),
    }

    def bench_file(path: str) -> Callable:
        async def get() -> Response:
            content, media_type = bench_files[path]
            return Response(content, media_type=media_type, headers=workbench.HEADERS)

        return get

    for path in bench_files:
        app.add_api_route(path, bench_file(path), methods=["GET"], include_in_schema=False)
    for path, kind in (("/review/decide", "workbench"), ("/review/page", "workbench-page")):
        app.router.routes.append(Route(path, AsgiEndpoint(worked(kind)), methods=["POST"]))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Every HTTP error in the API's format: {"errors": [lines]}, an OperationOutcome on FHIR routes."""
        headers = getattr(exc, "headers", None)
        path = request.url.path
        if exc.status_code == 404:
            return errors(404, [w("api_not_found", path=path)], path=path)
        if exc.status_code == 405:
            allowed = (headers or {}).get("Allow", "")
            return errors(405, [w("api_method", method=request.method, path=path, allowed=allowed)], headers, path)
        return errors(exc.status_code, [str(exc.detail)], headers, path)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        lines = [w("api_bad_request", where=".".join(str(p) for p in e.get("loc", ())), message=e.get("msg", "")) for e in exc.errors()]
        return errors(422, lines or [w("api_bad_request", where="<request>", message="invalid")], path=request.url.path)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> Response:
        return errors(500, [w("api_failed", detail=type(exc).__name__)], path=request.url.path)

    return app


class Answered:
    """An answer a route gives without a job: ``reply`` is (status, body, media type, headers)."""

    def __init__(self, status: int, body: bytes, media_type: str, headers: Optional[dict] = None):
        self.reply = (status, body, media_type, headers)


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


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (bound before anything is loaded): a busy port is one line, exit 1."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host}: cannot listen there: {exc.strerror or exc}", 2) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        import errno

        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is in use (another server listens there): choose another with --port", 1) from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from None
    sock.set_inheritable(True)
    return sock


def _load_everything(kb: Any, warm: bool = True) -> Any:
    """Every version loaded and grounded as the workers need it: the resident engine and the program of ``missing``."""
    from .api import engine_for, resident_for
    from .cases.versions import Chooser
    from .engine.program import compiled

    chooser = Chooser.of(kb)
    for version in chooser.versions():
        version.vocabulary
        resident_for(version)  # ground every version before the first request
        engine_for(version).program.chunk_text  # the program of many requests decided together
        compiled(version).abduction_text  # and build the program `missing` grounds
    if warm:
        _warm(chooser)
    return chooser


def _warm(chooser: Any, examples: int = 2, routes: tuple = ("evaluate", "missing", "what-if")) -> None:
    """Answer a few of each version's example cases on every route once, so that what is built on
    first use is built before the workers are forked (a cold worker's first missing took a second)."""
    from .knowledge.tree_files import TreeFileError, read_tree_file

    handler = Handler(chooser, DEFAULT_TIME_LIMIT, answers=0)
    for version in chooser.versions():
        folder = version.path / "cases"
        try:
            files = sorted(p for p in folder.rglob("*.json") if p.is_file() and not p.is_symlink())[: examples * 4]
        except OSError:
            continue
        used = 0
        for path in files:
            try:  # a regular file of the tree, small: never a FIFO, a link out of the tree or a big file
                body = read_tree_file(path, version.root, MAX_REMEMBERED_BODY)
            except TreeFileError:
                continue
            if handler.one("evaluate", body)[0] != 200:
                continue
            if "missing" in routes:
                handler.one("missing", body)
            if "what-if" in routes:
                handler.one("what-if", json_bytes({"case": json.loads(body), "changes": []}))
            used += 1
            if used >= examples:
                break


def _trial(kb: Any) -> tuple:
    """The start, in a worker: ("ok", None), or ("kb", the error's line)."""
    try:
        _load_everything(kb, warm=False)
    except KbError as exc:
        return ("kb", exc.summary_line())
    except KineretError as exc:
        return ("kb", str(exc))
    return ("ok", None)


def start(kb: Any, limits: Limits) -> Any:
    """Load the KB for serving within the limits: tried first in a worker stopped at them, then here.

    A KB that grounds without end (or past the memory limit) ends the
    start with one line naming the limit (exit 3); a broken KB with its
    first error (exit 2).
    """
    from .limits import run_limited

    outcome = run_limited(lambda: _trial(kb), limits)
    if not outcome.ok:
        if outcome.status in (TIMEOUT, MEMORY):
            raise ServeError(f"serve: the KB could not be loaded within {limits.describe(outcome.status).replace('--time-limit', '--start-time-limit')}; nothing is served", 3)
        raise ServeError(f"serve: internal error while loading the KB: {outcome.detail}", 1)
    kind, line = outcome.value
    if kind == "kb":
        raise ServeError(line, 2)
    return _load_everything(kb)


@dataclass
class Integration:
    """How ``serve`` meets EHRs and payers (docs/integration.md); see :func:`create_app` for each."""

    base_url: Optional[str] = None  # default: http://HOST:PORT
    allowed_hosts: Sequence[str] = ()  # default: the address bound (loopback's names on loopback) and the base URL's host
    cors_origins: Sequence[str] = ()
    auth: Any = None
    fhir_servers: Sequence[str] = ()
    db: Any = None  # None: the default log file; False: no log; a URL
    advisory_card: bool = False

    def resolved(self, host: str, port: int) -> "Integration":
        from urllib.parse import urlsplit

        from .web.guard import default_hosts

        base = self.base_url or f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        hosts = list(self.allowed_hosts) or [*default_hosts(host), (urlsplit(base).hostname or "").lower()]
        return Integration(base, hosts, self.cors_origins, self.auth, self.fhir_servers, self.db, self.advisory_card)


def serve(
    kb: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: Optional[str] = None,
    body_limit: int = DEFAULT_BODY_LIMIT,
    time_limit: float = DEFAULT_TIME_LIMIT,
    workers: Optional[int] = None,
    memory_limit: Optional[int] = DEFAULT_MEMORY_MB,
    start_limit: float = DEFAULT_START_LIMIT,
    queue_limit: Optional[int] = None,
    batch_limit: int = DEFAULT_BATCH_LIMIT,
    announce: Optional[Callable[[Any], None]] = None,
    answers: int = ANSWERS_KEPT,
    integration: Optional[Integration] = None,
) -> None:
    """Run the server until SIGINT or SIGTERM; in-flight requests finish first.

    The port is bound first (a busy one ends the start at once), then the KB
    is loaded within ``start_limit`` seconds and ``memory_limit`` MB, then the
    workers are forked. :class:`ServeError` says why the server did not start.
    """
    import uvicorn

    from .server_pool import default_workers

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

    sock = bind(host, port)
    setup = (integration or Integration()).resolved(host, port)
    try:
        from .decision_log import DecisionLog, default_location

        log = None if setup.db is False else DecisionLog(str(setup.db) if setup.db else str(default_location()))  # created or migrated before any worker starts
        chooser = start(kb, Limits(start_limit, memory_limit))
        if announce is not None:
            announce(chooser.default())
        import gc

        gc.freeze()  # the loaded KB lives as long as the server: the collector no longer walks it (pauses of 30-50 ms)
        app = create_app(
            chooser,
            token,
            body_limit,
            time_limit,
            batch_limit,
            workers if workers is not None else default_workers(),
            memory_limit,
            queue_limit,
            answers,
            base_url=setup.base_url,
            allowed_hosts=setup.allowed_hosts,
            cors_origins=setup.cors_origins,
            auth=setup.auth,
            db=log if log is not None else False,
            fhir_servers=setup.fhir_servers,
            advisory_card=setup.advisory_card,
        )
        try:
            Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=60)).run(sockets=[sock])
        finally:
            app.state.pool.close()
    finally:
        sock.close()

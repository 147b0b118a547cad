"""The parse stage of an import: bytes in, batches of `RowChanges` and rejects out.

Two ways to run it, same result:
- in the applying thread (the default);
- in a child process (`parse_in_child_bytes`), so parsing and converting run
  on the second core while this process applies rows to the store. Bytes go
  to the child and compact batches come back through pipes; both directions
  are bounded, so memory stays flat.

Measured on the 2-core benchmark machine (see README, "Performance"), the
child path was *slower*: unpickling the batches and rebuilding the rows in
the parent cost about as much as parsing them, and the parent is the
bottleneck. It is therefore opt-in, kept (and tested) for machines and goals
where applying dominates.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypedDict, Unpack

from pydantic import TypeAdapter

from connector.config.connection import ImportGoal
from connector.engine.rows import RowChanges, RowPlan
from connector.errors import FormatError
from connector.formats import DelimitedReader, iter_decoded
from connector.gc_tuning import tune_garbage_collector
from connector.goals.registry import Goal
from connector.limits import THREAD_JOIN_SECONDS
from connector.storage import RowReject

_END = b""
_GOAL_ADAPTER: TypeAdapter[Goal] = TypeAdapter(Goal)
_PIPE_AHEAD = 4
"""Batches a child may parse ahead of the applier (bounded memory)."""
_CREDIT_POLL_SECONDS = 0.5
"""How often a child waiting for the applier checks that its parent still lives."""


class _ParentGone(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """The parent process died (killed): the child stops instead of waiting for ever."""


@dataclass(slots=True)
class ParsedBatch:
    rows: list[RowChanges]
    rejects: list[RowReject]
    rows_read: int
    """Records read from the file so far (cumulative)."""


class ParseJob(TypedDict):
    """What a parse needs besides the bytes and the goal; both ways take it as keywords."""

    file: str
    extra_column: str | None
    batch_size: int


def parse_batches(
    chunks: Iterable[bytes], goal: ImportGoal, **job: Unpack[ParseJob]
) -> Generator[ParsedBatch, None, None]:
    """Parse in this thread. FormatError for a file that cannot be read at all."""
    reader, plan = _open(chunks, goal, job)
    yield from _batches(reader, plan, job["batch_size"])


def _open(
    chunks: Iterable[bytes], goal: ImportGoal, job: ParseJob
) -> tuple[DelimitedReader, RowPlan]:
    """The file's reader, its header read, and the plan of its columns."""
    file = job["file"]
    text = iter_decoded(chunks, encoding=goal.format.encoding, file=file)
    reader = DelimitedReader(text, goal.format, file=file)
    return reader, RowPlan(goal, reader.columns, file=file, extra_column=job["extra_column"])


def _batches(
    reader: DelimitedReader, plan: RowPlan, batch_size: int
) -> Generator[ParsedBatch, None, None]:
    """The file's rows and rejects, `batch_size` of them a batch, then the rest."""
    read = [0]
    rows: list[RowChanges] = []
    rejects: list[RowReject] = []
    for parsed in plan.rows(reader, read):
        if isinstance(parsed, RowReject):
            rejects.append(parsed)
        else:
            rows.append(parsed)
        # rejects count too: a file whose rows are all rejected must not pile them up
        if len(rows) + len(rejects) >= batch_size:
            yield ParsedBatch(rows, rejects, read[0])
            rows, rejects = [], []
    yield ParsedBatch(rows, rejects, read[0])


def parse_batches_in_child(
    chunks: Iterable[bytes], goal: ImportGoal, **job: Unpack[ParseJob]
) -> Generator[ParsedBatch, None, None]:
    """Parse in a child process; the same batches as `parse_batches`, in the same order."""
    file, extra_column = job["file"], job["extra_column"]
    context = multiprocessing.get_context("spawn")
    bytes_out, bytes_in = context.Pipe(duplex=False)
    batches_in, batches_out = context.Pipe(duplex=False)
    credit = context.Semaphore(_PIPE_AHEAD)
    child = context.Process(
        target=_child_main,
        args=(goal.model_dump_json(), job),
        kwargs={
            "bytes_in": bytes_out,
            "batches_out": batches_out,
            "credit": credit,
        },
        name=f"connector-parse {file}",
        daemon=True,
    )
    child.start()
    bytes_out.close()
    batches_out.close()
    feeder_error: list[BaseException] = []
    feeder = threading.Thread(
        target=_feed, args=(chunks, bytes_in, feeder_error), name="connector-feed", daemon=True
    )
    feeder.start()
    finished = False
    try:
        plan: RowPlan | None = None
        while True:
            try:
                message = pickle.loads(batches_in.recv_bytes())  # noqa: S301 -- our own child
            except EOFError:
                if feeder_error:
                    raise feeder_error[0] from None
                raise FormatError("the parsing process ended unexpectedly", file=file) from None
            kind = message[0]
            if kind == "columns":
                plan = RowPlan(goal, message[1], file=file, extra_column=extra_column)
            elif kind == "batch":
                credit.release()
                assert plan is not None  # noqa: S101 -- "columns" always comes first
                yield _expand(plan, message)
            elif kind == "error":
                if feeder_error:
                    raise feeder_error[0]
                raise FormatError(message[1], file=file, line=message[2], column=message[3])
            elif kind == "end":
                if feeder_error:
                    raise feeder_error[0]
                finished = True
                return
    finally:
        batches_in.close()
        bytes_in.close()
        if not finished:
            child.terminate()  # stopped early: a bad row batch, a stop request, an S3 error
        child.join()
        feeder.join(timeout=THREAD_JOIN_SECONDS)


def _feed(chunks: Iterable[bytes], pipe: Connection, errors: list[BaseException]) -> None:
    """Send the file's bytes to the child; a source error (S3) stops the child too."""
    try:
        for chunk in chunks:
            pipe.send_bytes(chunk)
        pipe.send_bytes(_END)
    except (BrokenPipeError, OSError):
        return  # the child stopped early (a bad file); its message says why
    except BaseException as error:  # noqa: BLE001 -- handed to the applying thread, which re-raises
        errors.append(error)
    finally:
        pipe.close()


def _expand(plan: RowPlan, message: tuple[Any, ...]) -> ParsedBatch:
    mappings = plan.mappings
    rows = [
        RowChanges(line, key, [(mappings[index], values) for index, values in cells], extra, delete)
        for line, key, cells, extra, delete in message[1]
    ]
    rejects = [RowReject(*reject) for reject in message[2]]
    return ParsedBatch(rows, rejects, message[3])


def _child_main(
    goal_json: str,
    job: ParseJob,
    *,
    bytes_in: Connection,
    batches_out: Connection,
    credit: Any,
) -> None:
    """The child: parse what arrives, send back compact batches, then "end" or "error"."""

    def send(message: tuple[Any, ...]) -> None:
        batches_out.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    # Ctrl-C reaches the whole process group: the parent decides (it rolls the file back
    # and stops feeding this child); a KeyboardInterrupt here would only print a trace
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    file = job["file"]

    def take_credit() -> None:
        # A parent killed with SIGKILL never releases the semaphore: a plain acquire()
        # would leave this child waiting for ever, an orphan. Wait in slices, and stop
        # once the parent is gone (its sentinel pipe closes when it dies).
        while not credit.acquire(timeout=_CREDIT_POLL_SECONDS):
            if parent is None or not parent.is_alive():
                raise _ParentGone

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                chunk = bytes_in.recv_bytes()
            except EOFError:
                raise FormatError("the file's data stopped arriving", file=file) from None
            if chunk == _END:
                return
            yield chunk

    goal: Any = _GOAL_ADAPTER.validate_json(goal_json)
    tune_garbage_collector()
    try:
        reader, plan = _open(chunks(), goal, job)
        send(("columns", reader.columns))
        positions = {id(mapping): index for index, mapping in enumerate(plan.mappings)}
        for batch in _batches(reader, plan, job["batch_size"]):
            rows = [
                (
                    row.line,
                    row.key,
                    [(positions[id(mapping)], values) for mapping, values in row.cells],
                    row.extra,
                    row.delete,
                )
                for row in batch.rows
            ]
            rejects = [(r.file, r.line, r.column, r.reason) for r in batch.rejects]
            take_credit()
            send(("batch", rows, rejects, batch.rows_read))
        send(("end",))
    except FormatError as error:
        with suppress(OSError):  # the parent may be gone too: then nobody needs the reason
            send(("error", error.reason, error.line, error.column))
    except (_ParentGone, OSError):
        pass  # the parent went away (stopped or killed): nothing left to do
    finally:
        batches_out.close()
        bytes_in.close()

"""Every batch size, timeout and limit of the package, in one place, each with its reason.

The operator's knobs live in `settings.Settings` (and a connection's `storage`
block); their defaults are read from here, so a default changes in one line.
Sizes that look alike but measure different things stay apart on purpose:
the row path applies `ROW_BATCH_ROWS` (1,000) rows a batch, while the store
walks itself `STORE_PAGE_ROWS` (2,000) profiles a statement. They were two
copies of "a batch size" that had drifted; they are now two named knobs,
values unchanged.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------- rows and batches

ROW_BATCH_ROWS: Final = 1000
"""Rows the row path parses, resolves and applies at once (`settings.batch_size`): big enough
to amortise a transaction's statements, small enough that a rejected batch re-reads little."""
MAX_REJECTS_STORED: Final = 1000
"""Rejected rows a run keeps in its history (`settings.max_rejects_stored`), and the most
`history --run` shows by default: enough to fix a file, bounded however bad the file is."""
STORE_PAGE_ROWS: Final = 2000
"""Profiles the store reads or writes per statement when it walks itself (`iter_profiles`,
`store copy`, the match-key rewrite): below SQLite's 32,766 bound variables at any width."""
PROFILE_BATCH_ROWS: Final = 65536
"""Profiles of one Arrow batch from `profile_batches` (segment counts, exports' minimum below)."""
EXPORT_BATCH_ROWS: Final = 16384
"""The fewest profiles the export reads from the store at once. Column kernels cost a fixed
overhead per call, so 1,000-row batches (the import's setting) ran at a fifth of the speed;
16k rows measured fastest, and one batch of the bench's 12 columns holds a few MB."""
EXPORT_MEMBER_PAGE: Final = 16384
"""Previous members read from the store at once, beside each batch of profiles."""
COPY_MEMBER_PAGE: Final = 10000
"""Export members copied per page by `connector store copy`."""

# ---------------------------------------------------------------- bytes

PIECE_BYTES: Final = 3 << 19
"""Bytes of a file the engine parses and applies at once (its batch, 1.5 MiB), when no other
file is being imported in the process. About three are in flight: the next piece is
converted while this one is applied and the last one written. 1M rows, SQLite, three
interleaved runs each (2026-12-07), 1 MiB pieces before the rules' shortcuts for one row a
key against both changes together: fresh import 6.30-6.60 -> 5.64-5.95 s, update 7.94-8.06
-> 7.27-7.54 s, peak RSS 212 -> 220 MB (the shortcuts alone, on a noisier half hour:
medians 7.49 -> 6.56 s and 8.11 -> 7.62 s). 2 MiB was no faster fresh (more of its buffers
pass glibc's 128 KiB mmap threshold: 1.3 s more system time) and took one daemon running
two imports over 300 MB (341 MB), hence `PIECE_BYTES_SHARED` (`imports._piece_size`)."""
PIECE_BYTES_SHARED: Final = 1 << 20
"""A file's piece size while another file is being imported in the same process: one daemon
running two 300k-row imports at once peaked at 274 MB with 1 MiB pieces, 298 MB with both at
1.5 MiB, 284-286 MB with the first at 1.5 MiB and the second at 1 MiB."""
PREFETCH_FILES: Final = 8
"""Small files downloaded ahead of the one being applied, so S3 round trips overlap the
store's work: many small files (thousands a run) go several times faster."""
PREFETCH_MAX_BYTES: Final = 1 << 20
"""Only files that fit one chunk are fetched ahead: read whole at once, so their HTTP
connections are free again at once and memory stays bounded (8 MiB at most)."""

# ---------------------------------------------------------------- timeouts and attempts

S3_MAX_ATTEMPTS: Final = 3
"""Attempts per request, the first included (botocore's `total_max_attempts`, its standard
mode's default): with the connect timeout, a dead endpoint fails in about 5 s, not 20."""
S3_CONNECT_TIMEOUT_SECONDS: Final = 1.5
"""Seconds to open a TCP connection: S3 (or a local MinIO) answers in milliseconds, and one
lost SYN (retransmitted after 1 s) still fits."""
S3_READ_TIMEOUT_SECONDS: Final = 20.0
"""Seconds without a byte from S3 before a read fails, mid-body included. The clock starts
once a request's body is sent, and S3 keeps slow answers (a large CompleteMultipartUpload or
CopyObject) alive with whitespace, so this bounds silence, not the length of a request."""
POSTGRES_CONNECT_TIMEOUT_SECONDS: Final = 10
"""Seconds to reach the PostgreSQL server before the store counts as unavailable (and the
daemon retries with backoff)."""
POSTGRES_POOL_TIMEOUT_SECONDS: Final = 30.0
"""Seconds a caller waits for a pooled connection: longer than any single statement of a run."""
SMTP_TIMEOUT_SECONDS: Final = 20.0
"""Seconds per SMTP operation (`settings.smtp_timeout`): a stuck mail server must not hold
the run's summary for long."""
SHUTDOWN_TIMEOUT_SECONDS: Final = 30.0
"""Seconds the daemon lets running goals finish after the first SIGTERM
(`settings.shutdown_timeout`), within systemd's default 90 s stop timeout."""
THREAD_JOIN_SECONDS: Final = 5
"""Seconds to wait for a helper thread (parse feeder, metrics server) or a cancelled fire to
end before the process moves on: they hold no data that a wait would save."""

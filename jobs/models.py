"""The job queue's one table (its code is voix/jobs.py)."""

from piccolo.columns import Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table as Model

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"


class Job(Model, tablename="job"):
    """Work to do once, when due: claimed by one runner at a time for the length of a lease."""

    id: Serial
    kind = Varchar(length=64)
    payload = Text(default="{}")  # JSON
    key = Varchar(length=200, null=True, default=None)
    # The key while the job is queued or running, NULL once it ended: its unique index is what
    # keeps a second job with the same key out, on both engines, without a partial index.
    pending_key = Varchar(length=200, null=True, default=None)
    status = Varchar(length=8, default=QUEUED)
    run_at = Timestamptz()
    attempts = Integer(default=0)
    max_attempts = Integer(default=5)
    last_error = Text(default="")
    locked_by = Varchar(length=64, null=True, default=None)
    locked_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)

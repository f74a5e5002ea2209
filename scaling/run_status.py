"""The statuses a run's summary.json records, defined once for training, sweeps and analysis.

A run is finished when its summary says completed, diverged or failed. "preempted" is not finished: the
run stopped at a stop request (SIGTERM/SIGINT) with a checkpoint at that step, and rerunning resumes it.
Completed and diverged runs are final and never trained again; a failed run is retried by the next sweep.
"""

COMPLETED = "completed"  # trained every step (a packed member keeps it while it is still training)
DIVERGED = "diverged"  # the loss went non-finite; the summary records where
FAILED = "failed"  # an error ended the run; the summary records it
PREEMPTED = "preempted"  # stopped on request with a checkpoint; resumed by the next run

FINISHED = (COMPLETED, DIVERGED, FAILED)
FINAL = (COMPLETED, DIVERGED)  # finished and not retried

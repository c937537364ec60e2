"""What a probe run tells the layers above it, inside the transaction that closes it.

Sent with `send()`: a receiver that fails rolls the closing back, so the run is retried.
"""

from django.dispatch import Signal

# A run closed and its verdicts were applied to the items. Arguments: run, errors (the
# "probe [region]: summary" lines of its results that could not read AWS).
probe_run_finished = Signal()

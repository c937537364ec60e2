"""What the record tasks retry on, importable without the PDF and signing libraries (a
worker imports the task modules whether or not it ever makes a record)."""


class TrustedTimeError(Exception):
    """The time-stamping authority (or, with SIGNING_LTV, the revocation services) could not
    be used: nothing was signed. Usually transient, so the record task retries it."""

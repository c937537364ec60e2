"""Dates and times wherever Django formats them by default (the admin, a bare {{ datetime }}):
ISO dates and the 24-hour UTC clock every page of the app prints, not en's "Dec. 5, 2026,
11:24 p.m." (TIME_ZONE is UTC). Formats not named here fall through to Django's own."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = r"Y-m-d H:i:s \U\T\C"
SHORT_DATETIME_FORMAT = r"Y-m-d H:i \U\T\C"

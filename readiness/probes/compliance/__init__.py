"""Compliance: one module per item of the checklist's Compliance section."""

from readiness.probes import import_modules

import_modules(__name__, __path__)

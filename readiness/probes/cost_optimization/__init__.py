"""Cost Optimization: one module per item of the checklist's Cost Optimization section."""

from readiness.probes import import_modules

import_modules(__name__, __path__)

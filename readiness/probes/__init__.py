"""AWS probes: one module per AWS area, each registering its probes with `@probe`.

Every module of this package except the framework ones is imported here, so adding a module
is all it takes to add probes.
"""

import importlib
import pkgutil

_FRAMEWORK = {"base", "runner", "session"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _FRAMEWORK:
        importlib.import_module(f"{__name__}.{_module.name}")

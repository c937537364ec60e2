"""AWS probes: one module per section of the checklist, each registering its probes with
`@probe` for the items of its section.

A section too large for one module is a subpackage of the same name with one module per item
(security/encryption.py verifies Security / Encryption). Every module of this package and of
those subpackages except the framework ones is imported here, so adding a module is all it
takes to add probes.
"""

import importlib
import pkgutil

# The framework, the AWS reads shared by several modules (aws) and the standards each probe
# maps to: no probes of their own.
_FRAMEWORK = {"aws", "base", "call_cache", "runner", "session", "standards", "throttle"}


def import_modules(package: str, path) -> None:
    """Import every module of `package` but the framework ones; a section subpackage calls
    this from its __init__ for its item modules."""
    for module in pkgutil.iter_modules(path):
        if module.name not in _FRAMEWORK:
            importlib.import_module(f"{package}.{module.name}")


import_modules(__name__, __path__)

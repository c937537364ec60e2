"""The pipeline API's schema is a contract with generated clients: moving code never changes it.

tests/data/openapi-v1.json was written by the code before the layers change (when the
endpoints were one module, api/endpoints.py). Everything in it still holds, word for word;
since then the schema gained the error answers each operation can give (400, 401, and
404 where a deployment is named), which it always gave but did not document, and additions
written into the file as such (issue 18's run control: an optional body naming a run's
regions, a run's regions, time left and cancel address, the cancel operation; issue 18's
accounts: a deployment's AWS accounts read and replaced, created with them, a run's
accounts; a run's accounts picked, its progress per account and whether it was partial); a
change or a removal is never written into it.
"""

import json
from pathlib import Path

from readiness.api.endpoints import api

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "openapi-v1.json"


def _served() -> dict:
    return json.loads(json.dumps(api.get_openapi_schema()))  # as clients read it


def _changes(old, new, where="") -> list[str]:
    """What `new` changed or dropped of `old`; keys added to a `responses` map are allowed."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = [f"{where}/{key} was removed" for key in old if key not in new]
        if not where.endswith("/responses"):
            found += [f"{where}/{key} was added" for key in new if key not in old]
        for key in old.keys() & new.keys():
            found += _changes(old[key], new[key], f"{where}/{key}")
        return found
    return [] if old == new else [f"{where} changed: {old!r} → {new!r}"]


def test_everything_clients_were_built_from_still_holds():
    assert _changes(json.loads(SCHEMA.read_text()), _served()) == []


def test_every_operation_documents_its_error_answers():
    for path, operations in _served()["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"400", "401"} <= documented, (method, path)
            if "{deployment_id}" in path:
                assert "404" in documented, (method, path)


def test_no_object_of_the_served_schema_repeats_a_key():
    """A key written twice (ninja's int 400 beside an added "400") makes the docs page's
    Swagger UI refuse the whole schema ("duplicated mapping key")."""
    repeated = []

    def no_repeats(pairs):
        keys = [key for key, _ in pairs]
        repeated.extend(key for key in set(keys) if keys.count(key) > 1)
        return dict(pairs)

    json.loads(json.dumps(api.get_openapi_schema()), object_pairs_hook=no_repeats)
    assert repeated == []


def test_the_comparison_sees_a_change_and_a_removal():
    old = {"paths": {"/a": {"get": {"responses": {"200": {}}, "summary": "A"}}}}
    new = {"paths": {"/a": {"get": {"responses": {"200": {}, "401": {}}, "summary": "B"}}}}
    assert _changes(old, new) == ["/paths//a/get/summary changed: 'A' → 'B'"]
    assert _changes(old, {"paths": {}}) == ["/paths//a was removed"]


def test_operation_ids_keep_their_historical_names():
    operations = [
        operation["operationId"]
        for path in _served()["paths"].values()
        for operation in path.values()
    ]
    assert "api_endpoints_gate" in operations
    assert all(operation.startswith("api_endpoints_") for operation in operations)

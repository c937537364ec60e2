"""The pipeline API's schema is a contract with generated clients: moving code never changes it.

tests/data/openapi-v1.json was written by the code before the layers change (when the
endpoints were one module, api/endpoints.py). A deliberate API change updates it in the
same commit.
"""

import json
from pathlib import Path

from readiness.api.endpoints import api

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "openapi-v1.json"


def test_the_openapi_schema_is_the_one_clients_were_built_from():
    served = json.loads(json.dumps(api.get_openapi_schema()))  # as clients read it
    assert served == json.loads(SCHEMA.read_text())


def test_operation_ids_keep_their_historical_names():
    operations = [
        operation["operationId"]
        for path in api.get_openapi_schema()["paths"].values()
        for operation in path.values()
    ]
    assert "api_endpoints_gate" in operations
    assert all(operation.startswith("api_endpoints_") for operation in operations)

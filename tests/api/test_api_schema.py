"""Property tests against the published OpenAPI schema (schemathesis), every check it has.

Schemathesis reads /openapi.json of the in-process app and generates requests for
every route and parameter — including the documented filter fields of /models —
valid ones (which must be accepted) and invalid ones (which must be rejected with a
4xx), plus undeclared methods (405 with Allow). Every registered check runs: no 5xx,
documented status codes, content types and headers, answers that match their
response models, positive data accepted, negative data rejected, and the rest.
Examples per route are kept small so the run stays bounded in time.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks

from a4nn.api.app import create_app


@pytest.fixture
def api_schema(recorder, tmp_path):
    dataset = recorder.register_dataset("sim-low", "xfel-sim", {"beam": "low", "intensity": 1e14})
    engine = recorder.register_engine_config("a-b^(c-x)", 3, 25, 3, 0.5)
    search = recorder.start_search("s", "nsga-net-macro", dataset, engine, {"epochs": 5})
    parent = recorder.register_genome("0" * 21)
    for index in range(4):
        genome = recorder.register_genome(format(index + 1, "021b"))
        recorder.add_genome_parent(genome, parent, "mutation", search)
        arch = recorder.start_architecture(search, index=index, genome_id=genome, flops=10.0 + index, n_params=100)
        recorder.log_epoch(arch, 1, val_acc=50.0, val_loss=float("inf"))
        recorder.log_prediction(arch, 1, 25, 90.0, "a-b^(c-x)", [1.0, 2.0, 3.0], False, 0.1)
        state = tmp_path / f"m{index}.pt"
        state.write_bytes(b"state")
        recorder.log_checkpoint(arch, 1, state)
        recorder.finish_architecture(arch, final_acc=90.0 + index, fitness=90.0 + index, epochs_trained=1)
    app = create_app(database=recorder.database, checkpoint_roots=[tmp_path])
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")
load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())


def test_every_registered_check_runs() -> None:
    names = {getattr(check, "__name__", type(check).__name__) for check in ALL_CHECKS}
    assert {"not_a_server_error", "positive_data_acceptance", "negative_data_rejection", "unsupported_method",
            "status_code_conformance", "content_type_conformance", "response_schema_conformance"} <= names


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_match_the_schema(case) -> None:
    case.call_and_validate(checks=ALL_CHECKS)

"""The dependency rule of docs/architecture.md, beyond what import-linter's contracts say."""

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _import_cycles() -> list[list[str]]:
    """Strongly connected components of the module import graph (Tarjan), larger than one."""
    graph = grimp.build_graph("readiness", "signoff", exclude_type_checking_imports=True)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_through_others():
    assert _import_cycles() == []


def _state_writes(path: Path) -> list[int]:
    """Lines that assign `<x>.state = …` on a deployment or pass `state=` to an update()."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "state"
                    and isinstance(target.value, ast.Name)
                    and "deployment" in target.value.id
                ):
                    lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            writes = node.func.attr in {"update", "create", "bulk_update"}
            if writes and "Deployment" in receiver and any(k.arg == "state" for k in node.keywords):
                lines.append(node.lineno)
    return lines


def test_only_the_lifecycle_writes_a_deployments_state():
    lifecycle = ROOT / "signoff" / "lifecycle" / "services.py"
    writers = {
        f"{path.relative_to(ROOT)}:{line}"
        for package in ("readiness", "signoff")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and path != lifecycle
        for line in _state_writes(path)
    }
    assert writers == set()
    assert _state_writes(lifecycle), "the lifecycle's own writes are no longer seen by this test"


def test_the_checker_sees_a_state_written_elsewhere(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text(
        "def reopen(deployment):\n"
        "    deployment.state = 'draft'\n"
        "    Deployment.objects.filter(pk=1).update(state='draft')\n"
    )
    assert _state_writes(stray) == [2, 3]


def test_signoff_listens_to_the_checklist_layer_through_its_receivers():
    from readiness.checklists.signals import checklist_changed
    from readiness.probe_runs.signals import probe_run_finished

    def connected(signal) -> set[str]:
        # Each receiver is connected with a dispatch_uid, the first part of its lookup key.
        return {lookup_key[0] for lookup_key, *_ in signal.receivers}

    assert connected(checklist_changed) == {"signoff.lifecycle.checklist_changed"}
    assert connected(probe_run_finished) == {
        "signoff.lifecycle.probe_run_finished",
        "signoff.notifications.probe_run_finished",
    }

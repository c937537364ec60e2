"""Enqueue a Celery task by its name.

The code that triggers work (a service) does not import the worker's entry points, which
import it: that would be an import circle. The apps import their tasks in ready(), so a
task is found registered with its options (and runs inline where a test asks for eager
mode); one that is not registered is still sent by name.

Work a commit triggers is not sent from here directly but through the outbox
(`readiness.outbox.services.outbox_enqueue`), which calls `send` after the commit.
"""

from celery import current_app


def delay(task_name: str, *args, task_id: str | None = None, **kwargs) -> None:
    try:
        task = current_app.tasks[task_name]
    except KeyError:
        current_app.send_task(task_name, args=args, kwargs=kwargs, task_id=task_id)
    else:
        task.apply_async(args, kwargs, task_id=task_id)


def send(
    task_name: str,
    args: list | tuple = (),
    kwargs: dict | None = None,
    *,
    retry_policy: dict | None = None,
    task_id: str | None = None,
) -> None:
    """Publish now (the outbox's sender); `retry_policy` overrides the configured one.
    Raises what the broker raises: the caller keeps the intent and tries again later."""
    options: dict = {"task_id": task_id} if task_id else {}
    if retry_policy is not None:
        options["retry_policy"] = retry_policy
    try:
        task = current_app.tasks[task_name]
    except KeyError:
        current_app.send_task(task_name, args=list(args), kwargs=kwargs or {}, **options)
    else:
        task.apply_async(args=list(args), kwargs=kwargs or {}, **options)


def revoke(task_ids: list[str]) -> None:
    """Ask every worker to drop these tasks if they have not started (a broadcast; workers
    that are down or busy may miss it, so a task also checks its work is still wanted).
    Raises what the broker raises."""
    if task_ids:
        current_app.control.revoke(task_ids)

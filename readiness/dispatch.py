"""Enqueue a Celery task by its name.

The code that triggers work (a service) does not import the worker's entry points, which
import it: that would be an import circle. The apps import their tasks in ready(), so a
task is found registered with its options (and runs inline where a test asks for eager
mode); one that is not registered is still sent by name.
"""

from celery import current_app


def delay(task_name: str, *args, **kwargs) -> None:
    try:
        task = current_app.tasks[task_name]
    except KeyError:
        current_app.send_task(task_name, args=args, kwargs=kwargs)
    else:
        task.delay(*args, **kwargs)

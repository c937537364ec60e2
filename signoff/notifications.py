"""Sign-off notifications (being written): announce() is called inside the transaction."""


def announce(kind: str, *, deployment_id: int, **ids) -> None:
    return None

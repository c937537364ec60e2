"""How a person is named: on pages, in the audit trail, in mail and in signed records."""


def display_name(user) -> str:
    """Full name, else the username: the one rule, since it is printed inside signed state."""
    return user.get_full_name().strip() or user.get_username()


def display_name_with_username(user) -> str:
    """For pickers, where two people may share a full name."""
    full = user.get_full_name().strip()
    return f"{full} ({user.get_username()})" if full else user.get_username()

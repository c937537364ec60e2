"""How a person is named: on pages, in the audit trail, in mail and in signed records."""

# The user fields that name a person (display_name, and the templates'
# `get_full_name|default:username`): what a read that only names people loads of them.
NAME_FIELDS = ("username", "first_name", "last_name")


def display_name(user) -> str:
    """Full name, else the username: the one rule, since it is printed inside signed state."""
    return user.get_full_name().strip() or user.get_username()


def display_name_with_username(user) -> str:
    """For pickers, where two people may share a full name."""
    full = user.get_full_name().strip()
    return f"{full} ({user.get_username()})" if full else user.get_username()

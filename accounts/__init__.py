"""Users, roles (Django groups), per-user preferences, login and API tokens."""

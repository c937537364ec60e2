"""A real OpenID provider for the SSO tests: a small Django project on django-oauth-toolkit.

It runs in its own process with its own SQLite database (`server.py` starts it on a free
loopback port), so the app under test talks to it over HTTP exactly as to a company's IdP.
"""

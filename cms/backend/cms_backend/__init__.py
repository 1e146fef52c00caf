"""Project package of the reference CMS backend (settings, URLs, WSGI entry point)."""

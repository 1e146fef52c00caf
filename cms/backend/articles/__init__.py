"""The CMS app: articles, media, sessions and health endpoints."""

"""Routes. Trailing slashes are optional so a POST is never lost to a redirect."""

from django.urls import re_path

from articles import views, views_media

urlpatterns = [
    re_path(r"^health/?$", views.readiness),
    re_path(r"^health/liveness/?$", views.liveness),
    re_path(r"^api/articles/?$", views.article_collection),
    re_path(r"^api/articles/(?P<article_id>[0-9]{1,30})/?$", views.article_item),
    re_path(r"^api/media/?$", views_media.upload),
    re_path(r"^media/(?P<key>[^/]{1,100})$", views_media.fetch),
    re_path(r"^api/session/?$", views.session_data),
    # Everything else, /api/ or not, is a JSON 404 (also with DEBUG on).
    re_path(r"", views.not_found),
]

handler400 = "articles.views.bad_request"
handler403 = "articles.views.permission_denied"
handler404 = "articles.views.not_found"
handler500 = "articles.views.server_error"

"""A one-file Django project behind HashStatic, with the admin.

Run: ``cd examples/django_project && waitress-serve project:application``.
"""

from pathlib import Path

import django
import django.contrib.admin
from django import template
from django.conf import settings
from django.contrib import admin
from django.core.wsgi import get_wsgi_application
from django.shortcuts import render
from django.urls import path

from hashstatic import HashStatic

HERE = Path(__file__).resolve().parent
# Static directories as collectstatic would merge them, one HashStatic layer each. The first is
# the innermost layer: its url() is the environ["hashstatic.url"] that templates see.
STATIC_DIRS = [HERE.parent / "site", Path(django.contrib.admin.__file__).parent / "static"]

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["localhost", "127.0.0.1"],
    SECRET_KEY="example only, not secret",
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    STATIC_URL="/static/",
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [HERE / "templates"],
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                    f"{__name__}.hashstatic",
                ],
                # The {% hashed %} tag below, without an app to hold a templatetags package.
                "builtins": [__name__],
            },
        }
    ],
)
django.setup()

register = template.Library()


def hashstatic(request):
    """Context processor: the middleware's URL builder, for output it does not rewrite."""
    return {"hashstatic_url": request.META["hashstatic.url"]}


@register.simple_tag(takes_context=True)
def hashed(context, path):
    return context["hashstatic_url"](path)


def index(request):
    return render(request, "index.html")


def welcome_email(request):
    # Plain text is never rewritten: its asset URLs come from the context processor.
    return render(request, "welcome.txt", content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("", index),
    path("welcome.txt", welcome_email),
    path("admin/", admin.site.urls),
]

application = get_wsgi_application()
for directory in STATIC_DIRS:
    application = HashStatic(application, root=directory, prefix=settings.STATIC_URL)

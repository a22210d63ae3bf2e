import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from config.fastpath import FastRoutes  # noqa: E402 - needs the apps loaded
from triggers.urls import fast_routes  # noqa: E402

application = FastRoutes(django_application, fast_routes)

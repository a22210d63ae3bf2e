import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from django.urls import get_resolver  # noqa: E402

from config.fastpath import FastRoutes  # noqa: E402 - needs the apps loaded
from triggers.urls import fast_routes  # noqa: E402

application = FastRoutes(django_application, fast_routes)

# What the process loaded to serve (the apps, the URL patterns, the admin) lives as long as
# the process: moved out of the collector's reach, a full collection no longer walks its
# ~120,000 objects, a 40-80 ms pause that a request happened to pay (the reports' p99).
get_resolver().url_patterns  # noqa: B018 - built lazily otherwise, on the first request
gc.freeze()

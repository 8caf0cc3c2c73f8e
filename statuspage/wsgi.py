import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statuspage.settings")
django_application = get_wsgi_application()

# Web connections get a statement timeout (plumbing/deadline.py); workers do not.
from plumbing.deadline import bound_web_connections  # noqa: E402 - needs Django set up

bound_web_connections()

# Snapshot GETs (the public page and its JSON) are answered before Django's
# request handling, with the same headers the middleware would give them; a
# status page must stay fast when everyone opens it at once.
from public.serving import SnapshotWSGI  # noqa: E402 - needs Django set up
from public.snapshot import store  # noqa: E402 - needs Django set up

application = SnapshotWSGI(django_application)

# Every web process keeps this host's snapshot current by itself (published changes at
# once, the passing time every SNAPSHOT_MAX_AGE_SECONDS): several web hosts need no
# shared volume, cron or beat of their own.
store().keep_current()

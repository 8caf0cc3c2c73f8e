"""gunicorn's settings for production: ``gunicorn statuspage.wsgi`` reads this file
from the working directory. Flags on the command line override it.

Threads (``gthread``): a request waiting on the database holds one thread, not a
whole worker, so the snapshot's answers (``/``, ``/api/v2/*``: no database) never
queue behind database-bound requests when the database is slow or hung. Database
work is bounded by ``WEB_DATABASE_TIMEOUT_SECONDS`` (plumbing/deadline.py).
"""

import os

wsgi_app = "statuspage.wsgi:application"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A worker silent for this long is restarted (with threads, a stuck request does not
# silence it: the deadline above ends those).
timeout = 30
graceful_timeout = 30
keepalive = 5

"""Every task can be scheduled: beat refuses one whose soft time limit (its own or
the default) is above its hard one, and then it never runs."""

from statuspage.celery import app


def test_every_tasks_soft_limit_comes_before_its_hard_one():
    app.loader.import_default_modules()
    conf = app.conf
    wrong = {}
    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        hard = task.time_limit or conf.task_time_limit
        soft = task.soft_time_limit or conf.task_soft_time_limit
        if hard and soft and soft > hard:
            wrong[name] = (soft, hard)
    assert wrong == {}


def test_a_task_a_killed_worker_held_returns_within_its_time_limit_plus_a_minute(settings):
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        assert "visibility_timeout" not in options  # the filesystem transport has none
    else:
        assert options["visibility_timeout"] == settings.CELERY_TASK_TIME_LIMIT + 60

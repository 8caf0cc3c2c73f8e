"""The production path passes ``manage.py check --deploy`` (CI runs it too), and a
public address that is not one is caught before it ends up in mails and feeds."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def deploy_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "status.example.com",
        "STATUSPAGE_PUBLIC_URL": "https://status.example.com",
        "PYTHONWARNINGS": "ignore",
        **overrides,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py's own
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_the_deploy_check():
    run = deploy_check()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "System check identified no issues" in run.stdout


def test_behind_a_proxy_too():
    run = deploy_check(TRUSTED_PROXY_HOPS="1")
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_public_url_that_is_no_address_is_refused():
    run = deploy_check(STATUSPAGE_PUBLIC_URL="status.example.com")
    assert run.returncode != 0
    assert "plumbing.E001" in run.stderr

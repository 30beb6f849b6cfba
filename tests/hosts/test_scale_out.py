"""The stack as separate hosts (stack/hosts.py): web, two `io` worker hosts, a media worker
host, broker, database, relay, beat, the S3 server and the third parties, each in a network
namespace of its own with its own working directory, so no part leans on a shared disk or a
shared loopback. Orders and an avatar signup go through; every job ends, each effect once."""

import pytest
import requests

from stack.hosts import Cluster
from stack.waiting import wait_until
from tests.helpers import png_bytes
from tests.hosts.helpers import not_exactly_once, unfinished_jobs, unpaid

pytestmark = pytest.mark.heavy


def test_orders_and_an_avatar_signup_go_through_a_stack_of_separate_hosts(cluster: Cluster):
    # The cluster gives every app host the bucket (AWS_STORAGE_BUCKET_NAME): without it, the
    # media host would have no avatar to read.
    assert cluster.media_on_s3(), "the app hosts' settings keep media on local disk"
    token = cluster.sign_up("scale-out@example.com")["token"]
    order_ids = [cluster.order(token)["order"]["id"] for _ in range(6)]
    response = requests.post(
        cluster.url + "/api/signup",
        data={"email": "avatar@example.com", "name": "Avatar", "password": "scale-out-avt-1"},
        files={"avatar": ("me.png", png_bytes((1200, 900)), "image/png")},
        timeout=30,
    )
    assert response.status_code == 201, response.text

    wait_until(
        lambda: not unpaid(cluster, order_ids) and not unfinished_jobs(cluster),
        timeout=90,
        message="every order paid and every job ended",
    )
    assert not not_exactly_once(cluster, order_ids)
    assert cluster.sql("SELECT count(*) FROM jobs_job WHERE state = 'dead'") == [(0,)]
    # The jobs really ran on the hosts they were meant for, and on both io hosts.
    for host in ("io1", "io2", "media"):
        assert " succeeded in " in cluster.hosts[host].logs(), host
    # The invoices are the media host's work.
    assert "make_invoice" in cluster.hosts["media"].logs()
    assert "make_avatar_thumbnails" in cluster.hosts["media"].logs()

    # The thumbnails are in the bucket, through the storage API; no worker host kept media of
    # its own, nor did the web host (the avatar, the invoices and exports are objects too).
    keys = cluster.bucket_keys()
    assert any("thumb" in key or key.endswith(".png") for key in keys), keys
    for name in ("web", "io1", "io2", "media"):
        for folder in ("media", "private", "exports"):
            assert not any((cluster.hosts[name].workdir / folder).rglob("*")), (name, folder)

"""Throttles count across web processes, in the broker's Redis, and let requests through when
it is down (docs/deployment.md, "Throttling")."""

import pytest
import requests

from shop.models import Customer
from stack.waiting import free_port

pytestmark = pytest.mark.faults


def test_two_web_servers_count_signups_together_and_let_them_through_with_the_broker_down(stack):
    app = stack(THROTTLING_ENABLED="true", THROTTLE_SIGNUP_RATE="4/hour")
    second_port = free_port()
    app.start_web(workers=2, threads=4)
    app.start_web("web2", port=second_port, workers=2, threads=4)
    servers = [app.url, f"http://127.0.0.1:{second_port}"]

    def sign_up(n: int) -> requests.Response:
        body = {"email": f"shared{n}@example.com", "name": "Shared", "password": "count-me-1"}
        return requests.post(f"{servers[n % 2]}/api/signup", json=body, timeout=30)

    # Alternating between two servers of two processes each, four signups are the limit.
    assert [sign_up(n).status_code for n in range(4)] == [201] * 4
    refused = [sign_up(n) for n in range(4, 6)]

    assert [response.status_code for response in refused] == [429, 429]
    assert all(int(response.headers["Retry-After"]) > 0 for response in refused)
    assert Customer.objects.count() == 4

    app.kill_broker()
    during_outage = [sign_up(n) for n in range(6, 8)]

    # Fail open: no 500, no 429; the signups are written and their jobs wait for the relay.
    assert [response.status_code for response in during_outage] == [201, 201]
    assert Customer.objects.count() == 6

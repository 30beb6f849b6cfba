"""A request Django refuses before any view (a Host header it does not serve) is answered in
the API's shape on the API, and with the HTML page elsewhere."""

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/products", "/api/ops/queues/crm/resume"])
def test_a_host_the_site_does_not_serve_gets_a_json_400_on_the_api(client, path):
    response = client.get(path, HTTP_HOST="Q9~")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Bad request."}


@pytest.mark.django_db
def test_and_the_html_page_elsewhere(client):
    response = client.get("/", HTTP_HOST="Q9~")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")

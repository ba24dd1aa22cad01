"""Numbers from the outside are checked at the edge: a clear 422, never a 500 from the driver."""
from __future__ import annotations

import pytest

from dashboard.deps import MAX_ROW_ID, row_id

TOO_BIG = str(2**63)
JUST_OVER = str(MAX_ROW_ID + 1)
HUGE = "9" * 40

API_GETS = ["/api/v1/incidents/{id}", "/api/v1/incidents/{id}/messages", "/incidents/{id}/share/state",
            "/incidents/{id}", "/api/v1/posts/{id}/redacted"]
API_POSTS = ["/api/v1/incidents/{id}/acknowledge", "/api/v1/incidents/{id}/claim", "/api/v1/posts/{id}/escalate"]


@pytest.mark.parametrize("value", [TOO_BIG, JUST_OVER, HUGE, "0", "-1"])
@pytest.mark.parametrize("path", API_GETS + API_POSTS)
def test_row_ids_out_of_range_in_a_path_are_refused_with_422(client_for, path, value):
    client = client_for("supervisor")
    url = path.format(id=value)
    if path in API_POSTS:
        r = client.post(url, headers={"x-csrf-token": client.csrf})
    else:
        r = client.get(url)
    assert r.status_code == 422, (url, r.status_code, r.text)
    detail = r.json()["detail"]
    assert any(str(MAX_ROW_ID) in d["msg"] or "greater than or equal to 1" in d["msg"] for d in detail), detail


def test_the_largest_row_id_is_accepted_and_simply_not_found(client_for):
    client = client_for("supervisor")
    assert client.get(f"/api/v1/incidents/{MAX_ROW_ID}").status_code == 404


@pytest.mark.parametrize("body", [{"incident_ids": [1, 2**63]}, {"incident_ids": [2**64, 1]}, {"incident_ids": [1, 2**31]}])
def test_row_ids_out_of_range_in_a_json_body_are_refused_with_422(client_for, body):
    client = client_for("supervisor")
    r = client.post("/api/v1/incidents/merge", json=body, headers={"x-csrf-token": client.csrf})
    assert r.status_code == 422, r.text


def test_row_ids_out_of_range_in_a_form_are_refused_not_a_500(client_for):
    client = client_for("supervisor")
    r = client.post("/incidents/1/reply", data={"csrf_token": client.csrf, "post_id": TOO_BIG, "text": "hi"})
    assert r.status_code == 422
    officer = client_for("officer")
    r = officer.post("/posts/1/attach", data={"csrf_token": officer.csrf, "incident_id": TOO_BIG},
                     headers={"x-requested-with": "flare"})
    assert r.status_code == 422 and "Choose the incident" in r.text


@pytest.mark.parametrize("text, expected", [("12", 12), (" 7 ", 7), (str(MAX_ROW_ID), MAX_ROW_ID), (TOO_BIG, None), (JUST_OVER, None),
                                            (HUGE, None), ("0", None), ("-3", None), ("", None), ("1e3", None)])
def test_row_id_from_a_form_field(text, expected):
    assert row_id(text) == expected


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1e309", "-1", str(10**9)])
def test_reclaim_idle_seconds_must_be_a_finite_bounded_number(client_for, value):
    client = client_for("dispatcher")
    r = client.get(f"/api/v1/queue?reclaim_idle_seconds={value}")
    assert r.status_code == 422, (value, r.status_code, r.text)
    assert "reclaim_idle_seconds" in str(r.json()["detail"])


def test_reclaim_idle_seconds_in_range_is_served(client_for):
    client = client_for("dispatcher")
    assert client.get("/api/v1/queue?reclaim_idle_seconds=0").status_code == 200
    assert client.get("/api/v1/queue?reclaim_idle_seconds=30.5").status_code == 200


@pytest.mark.parametrize("policy, says", [
    ("[" * 20000 + "]" * 20000, "nested"),
    ("a: " + "{b: " * 3000 + "c" + "}" * 3000, "nested"),
    # Nine references to nine references ... to a list: a few hundred bytes standing for 9**9 items.
    ("l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]\n" for n in range(1, 10)), "aliases"),
])
def test_an_edited_policy_nested_or_expanded_beyond_reason_is_refused_readably(client_for, policy, says):
    admin = client_for("admin")
    r = admin.post("/admin/policies", data={"csrf_token": admin.csrf, "policy": policy, "action": "validate"})
    assert r.status_code == 422 and says in r.text

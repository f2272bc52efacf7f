"""The web UI's handlers through aiohttp's test client (no browser): the session cookie's
flags, sign-in through AuthService (recorded, throttled), CSRF refusals, pages of hidden
repositories answering like missing ones, a reader refused a change, and READMEs sanitised.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.helpers import self_signed_certificate
from tests.web.seed import HOSTILE_README
from tests.web.support import ADMIN, Client, api, basic, csrf_of, readme, sign_in

READER = ("bob", "bob-Pa55word-for-tests")


async def seeded(make_client: ClientFactory, **database: str) -> Client:
    """A registry with auth on: bob (no grants), compartment acme, private acme/secret with a
    hostile README, and public acme/open."""
    client = await make_client(auth_enabled=True, admin_password=ADMIN[1], login_failures_per_address=3, **database)
    await api(client, "POST", "/api/v1/users", 201, {"name": "bob", "email": "bob@acme.com", "password": READER[1]})
    await api(client, "POST", "/api/v1/compartments", 201, {"name": "acme"})
    await api(client, "POST", "/api/v1/repositories", 201,
              {"compartment_id": "acme", "display_name": "secret", "readme": readme(HOSTILE_README)})  # fmt: skip
    public = {"compartment_id": "acme", "display_name": "open", "is_public": True, "description": "public"}
    await api(client, "POST", "/api/v1/repositories", 201, public)
    return client


@pytest.fixture
async def web(make_client: ClientFactory) -> Client:
    """The seeded registry on SQLite."""
    return await seeded(make_client)


@pytest.fixture(params=["sqlite", "postgresql"])
async def web_db(request: pytest.FixtureRequest, make_client: ClientFactory) -> Client:
    """The seeded registry on SQLite and on PostgreSQL, for the tests whose answers come from
    metadata reads and writes (throttling, grants, visibility, the audit log)."""
    if request.param == "sqlite":
        return await seeded(make_client)
    return await seeded(make_client, database_url=request.getfixturevalue("postgres_url"))


def set_cookies(response: Any) -> dict[str, str]:
    """Each Set-Cookie header by cookie name, as sent."""
    return {header.split("=", 1)[0]: header for header in response.headers.getall("Set-Cookie", [])}


async def test_sign_in_sets_an_httponly_samesite_session_and_shows_who(web: Client) -> None:
    response = await sign_in(web, ADMIN, next_page="/ui/admin")
    assert response.status == 303
    assert response.headers["Location"] == "/ui/admin"
    cookies = set_cookies(response)
    session = cookies["modelyard_session"]
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/ui" in session
    assert "Secure" not in session  # plain HTTP here; see the TLS test
    assert "HttpOnly" in cookies["modelyard_csrf"]  # renewed at sign-in
    page = await web.get("/ui/")
    assert 'data-testid="viewer">user:admin<' in await page.text()
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    events = await api(web, "GET", "/api/v1/audit?action=login", 200)
    assert any(e["actor"] == "user:admin" and e["outcome"] == "success" for e in events["items"])


async def test_sign_in_is_the_api_login_wrong_passwords_recorded_then_throttled(web_db: Client) -> None:
    key = (await api(web_db, "POST", "/api/v1/users/admin/keys", 201, {"description": "reads the audit"}))["secret"]
    for _ in range(3):
        refused = await sign_in(web_db, ("bob", "wrong-password"))
        assert refused.status == 401
        assert "Wrong user name or password." in await refused.text()
        assert "modelyard_session" not in set_cookies(refused)
    throttled = await sign_in(web_db, READER)  # the right password, but the address is over its limit
    assert throttled.status == 429
    assert "modelyard_session" not in set_cookies(throttled)
    # One limit for the UI and the API: the admin API refuses this address's passwords too.
    assert (await web_db.get("/api/v1/me", headers=basic(ADMIN))).status == 429
    audit = await web_db.get("/api/v1/audit?action=login", headers={"Authorization": f"Bearer {key}"})
    events = (await audit.json())["items"]
    # Newest first: the API's refusal, the throttled right password, the three wrong ones.
    assert [e["actor"] for e in events if e["outcome"] != "success"] == ["admin"] + ["bob"] * 4


async def test_next_only_leads_into_the_ui(web: Client) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/api/v1/users", "/ui//evil.example"):
        response = await sign_in(web, ADMIN, next_page=target)
        assert response.headers["Location"] == "/ui/", target


async def test_session_cookie_is_secure_under_tls(make_client: ClientFactory, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    client = await make_client(auth_enabled=True, admin_password=ADMIN[1], tls_cert=cert, tls_key=key)
    form = await client.get("/ui/login")
    assert "Secure" in set_cookies(form)["modelyard_csrf"]
    token = csrf_of(await form.text())
    # The test client speaks plain HTTP, so it would not send a Secure cookie back: send it by hand.
    response = await client.post(
        "/ui/login", data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1]},
        headers={"Cookie": f"modelyard_csrf={token}"}, allow_redirects=False,
    )  # fmt: skip
    assert response.status == 303
    cookies = set_cookies(response)
    assert "Secure" in cookies["modelyard_session"] and "Secure" in cookies["modelyard_csrf"]


async def test_session_cookie_is_secure_behind_a_tls_proxy(make_client: ClientFactory) -> None:
    """X-Forwarded-Proto: https counts from a trusted proxy only (``api/forwarded.py``)."""
    behind = await make_client(auth_enabled=True, admin_password=ADMIN[1], trusted_proxies=["127.0.0.1/32"])
    proxied = await behind.get("/ui/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in set_cookies(proxied)["modelyard_csrf"]
    direct = await make_client(auth_enabled=True, admin_password=ADMIN[1])
    spoofed = await direct.get("/ui/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in set_cookies(spoofed)["modelyard_csrf"]


async def test_posts_without_the_csrf_token_are_refused(web_db: Client) -> None:
    assert (await sign_in(web_db, ADMIN)).status == 303
    before = await api(web_db, "GET", "/api/v1/iam", 200)
    grant = {"action": "add", "role": "admin", "member": "user:bob", "etag": before["etag"] or ""}
    for token in (None, "", "forged-token-" + "x" * 40):
        form = dict(grant) if token is None else {**grant, "csrf_token": token}
        refused = await web_db.post("/ui/access", data=form, allow_redirects=False)
        assert refused.status == 403
        assert "security token" in await refused.text()
    assert await api(web_db, "GET", "/api/v1/iam", 200) == before
    # Signing in needs it too (no login CSRF), and so does signing out.
    login = await web_db.post("/ui/login", data={"username": "admin", "password": ADMIN[1]}, allow_redirects=False)
    assert login.status == 403
    logout = await web_db.post("/ui/logout", data={}, allow_redirects=False)
    assert logout.status == 403
    # With the page's token the same grant goes through.
    page = await web_db.get("/ui/access")
    done = await web_db.post("/ui/access", data={**grant, "csrf_token": csrf_of(await page.text())},
                          allow_redirects=False)  # fmt: skip
    assert done.status == 303
    after = await api(web_db, "GET", "/api/v1/iam", 200)
    assert "user:bob" in next(b["members"] for b in after["bindings"] if b["role"] == "admin")


async def test_a_hidden_repository_answers_like_a_missing_one(web_db: Client) -> None:
    assert (await sign_in(web_db, READER)).status == 303
    for suffix in ("", "/-/versions", "/-/versions/v1", "/-/access", "/-/versions/v1/files/config.json"):
        hidden = await web_db.get(f"/ui/r/acme/secret{suffix}")
        missing = await web_db.get(f"/ui/r/acme/nothing{suffix}")
        assert hidden.status == missing.status == 404, suffix
        hidden_text = (await hidden.text()).replace("secret", "NAME")
        missing_text = (await missing.text()).replace("nothing", "NAME")
        assert re.sub(r'value="[^"]+"', "", hidden_text) == re.sub(r'value="[^"]+"', "", missing_text)
    home = await (await web_db.get("/ui/")).text()
    assert "acme/open" in home and "acme/secret" not in home
    # Anonymous: both are "sign in first", never a hint which exists.
    web_db.session.cookie_jar.clear()
    hidden = await web_db.get("/ui/r/acme/secret", allow_redirects=False)
    missing = await web_db.get("/ui/r/acme/nothing", allow_redirects=False)
    assert hidden.status == missing.status == 303
    assert hidden.headers["Location"] == "/ui/login?next=%2Fui%2Fr%2Facme%2Fsecret"
    assert missing.headers["Location"] == "/ui/login?next=%2Fui%2Fr%2Facme%2Fnothing"


async def test_a_reader_sees_no_settings_and_is_refused_changing_them(web: Client) -> None:
    await api(web, "PUT", "/api/v1/repositories/acme/secret/-/iam", 200,
              {"bindings": [{"role": "reader", "members": ["user:bob"]}], "etag": None})  # fmt: skip
    assert (await sign_in(web, READER)).status == 303
    page = await web.get("/ui/r/acme/secret")
    assert page.status == 200
    html = await page.text()
    assert "Edit settings" not in html and "/-/access" not in html
    refused = await web.post("/ui/r/acme/secret/-/settings", allow_redirects=False, data={
        "csrf_token": csrf_of(html), "description": "defaced", "readme": "defaced",
    })  # fmt: skip
    assert refused.status == 403
    assert "lacks repository.configure" in await refused.text()
    shown = await api(web, "GET", "/api/v1/repositories/acme/secret", 200)
    assert shown["description"] == ""
    assert (await web.get("/ui/access")).status == 403
    assert (await web.get("/ui/audit")).status == 403
    assert (await web.get("/ui/admin")).status == 403


async def test_an_admin_changes_settings_through_the_form(web: Client) -> None:
    assert (await sign_in(web, ADMIN)).status == 303
    html = await (await web.get("/ui/r/acme/secret")).text()
    saved = await web.post("/ui/r/acme/secret/-/settings", allow_redirects=False, data={
        "csrf_token": csrf_of(html), "description": "Our model", "visibility": "private",
        "immutable_tag_patterns": "v*\nrelease-*", "mutable_tag_exclusions": "latest", "readme": "# New",
    })  # fmt: skip
    assert saved.status == 303
    shown = await api(web, "GET", "/api/v1/repositories/acme/secret", 200)
    assert shown["description"] == "Our model"
    assert shown["immutable_tag_patterns"] == ["v*", "release-*"]
    assert shown["mutable_tag_exclusions"] == ["latest"]
    bad = await web.post("/ui/r/acme/secret/-/settings", data={
        "csrf_token": csrf_of(html), "immutable_tag_patterns": "has space", "readme": "",
    })  # fmt: skip
    assert bad.status == 422
    assert "immutable_tag_patterns" in await bad.text()


async def test_the_readme_is_rendered_inert(web: Client) -> None:
    assert (await sign_in(web, ADMIN)).status == 303
    page = await web.get("/ui/r/acme/secret")
    html = await page.text()
    readme_html = html.split('data-testid="readme">', 1)[1].split("</article>", 1)[0]
    assert "<h1>ACME LLM</h1>" in readme_html and "<td>0.91</td>" in readme_html
    lowered = readme_html.lower()
    # The Markdown link to javascript: stays text (CommonMark refuses it); the HTML one loses its href.
    assert "click me](javascript:" in readme_html and "<a rel=" in readme_html
    for forbidden in ("<script", 'href="javascript', "onclick", "onerror", "tracker.example", 'src="x"'):
        assert forbidden not in lowered, forbidden
    assert "pwned" not in lowered.replace("pwned-by", "")  # the script's text went with it
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_sign_out_and_a_password_change_end_the_session(web: Client) -> None:
    assert (await sign_in(web, READER)).status == 303
    home = await web.get("/ui/")
    assert "user:bob" in await home.text()
    await api(web, "PUT", "/api/v1/users/bob/password", 204, {"password": "another-Pa55word"})
    assert "user:bob" not in await (await web.get("/ui/")).text()  # the session died with the password
    assert (await sign_in(web, ("bob", "another-Pa55word"))).status == 303
    page = await web.get("/ui/")
    out = await web.post("/ui/logout", data={"csrf_token": csrf_of(await page.text())}, allow_redirects=False)
    assert out.status == 303
    assert "modelyard_session=;" in set_cookies(out)["modelyard_session"].replace('""', "")
    assert "user:bob" not in await (await web.get("/ui/")).text()


async def test_anonymous_visitors_see_public_repositories_only(web: Client) -> None:
    home = await web.get("/ui/")
    html = await home.text()
    assert home.status == 200
    assert "acme/open" in html and "acme/secret" not in html
    assert (await web.get("/ui/r/acme/open")).status == 200


async def test_a_service_account_key_is_shown_once_and_works(web: Client) -> None:
    assert (await sign_in(web, ADMIN)).status == 303
    page = await web.get("/ui/access")
    token = csrf_of(await page.text())
    created = await web.post("/ui/access/service-accounts", allow_redirects=False,
                             data={"csrf_token": token, "name": "ci-bot@acme", "description": "CI"})  # fmt: skip
    assert created.status == 303
    shown = await web.post("/ui/access/service-accounts/ci-bot@acme/keys",
                           data={"csrf_token": token, "expires_in_days": "30"})  # fmt: skip
    html = await shown.text()
    assert shown.status == 200
    secret = re.search(r'data-testid="new-key">([^<]+)<', html)
    assert secret is not None
    me = await web.get("/api/v1/me", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert (await me.json())["subject"] == "serviceAccount:ci-bot@acme"
    again = await (await web.get("/ui/access")).text()
    assert secret.group(1) not in again and "new-key" not in again
    keys = await api(web, "GET", "/api/v1/service-accounts/ci-bot@acme/keys", 200)
    assert len(keys["items"]) == 1 and keys["items"][0]["time_expires"] is not None


async def test_users_and_groups_through_the_access_page(web: Client) -> None:
    assert (await sign_in(web, ADMIN)).status == 303
    token = csrf_of(await (await web.get("/ui/access")).text())
    done = await web.post("/ui/access/users", allow_redirects=False, data={
        "csrf_token": token, "name": "carol", "email": "carol@acme.com", "password": "carol-Pa55word"})  # fmt: skip
    assert done.status == 303
    assert (await web.post("/ui/access/groups", allow_redirects=False,
                           data={"csrf_token": token, "name": "ml"})).status == 303  # fmt: skip
    members = await web.post("/ui/access/groups/ml/members", allow_redirects=False,
                             data={"csrf_token": token, "members": "carol\nbob"})  # fmt: skip
    assert members.status == 303
    group = await api(web, "GET", "/api/v1/groups/ml", 200)
    assert sorted(group["members"]) == ["bob", "carol"]
    short = await web.post("/ui/access/users", data={"csrf_token": token, "name": "dave", "email": "d@acme.com",
                                                      "password": "short"})  # fmt: skip
    assert short.status == 422
    assert "password" in await short.text()


async def test_the_audit_log_filters_by_repository_action_and_time_and_pages(web_db: Client) -> None:
    assert (await sign_in(web_db, ADMIN)).status == 303
    for number in range(60):  # 60 updates of acme/open, newest last
        await api(web_db, "PATCH", "/api/v1/repositories/acme/open", 200, {"description": f"take {number}"})
    first = await web_db.get("/ui/audit?repository=acme/open&action=repository.update")
    html = await first.text()
    assert first.status == 200
    rows = re.findall(r"<td>repository:acme/open</td>|<td>acme/open</td>", html)
    assert len(rows) == 50
    assert "acme/secret" not in html
    older = re.search(r'href="(/ui/audit\?[^"]+page=\d+)"', html)
    assert older is not None
    second = await (await web_db.get(older.group(1).replace("&amp;", "&"))).text()
    assert len(re.findall(r"<td>repository:acme/open</td>|<td>acme/open</td>", second)) == 10
    assert "Older events" not in second
    future = await (await web_db.get("/ui/audit?since=2999-01-01")).text()
    assert "No events match." in future
    bad = await web_db.get("/ui/audit?since=yesterday")
    assert bad.status == 422


async def test_admin_page_configures_the_registry_and_creates_compartments(web: Client) -> None:
    assert (await sign_in(web, ADMIN)).status == 303
    html = await (await web.get("/ui/admin")).text()
    assert 'data-testid="compartments"' in html and ">acme<" in html
    token = csrf_of(html)
    saved = await web.post("/ui/admin/configuration", allow_redirects=False,
                           data={"csrf_token": token, "compartments_on_push": "on"})  # fmt: skip
    assert saved.status == 303
    config = await api(web, "GET", "/api/v1/configuration", 200)
    assert config == {"is_repository_created_on_first_push": False, "is_compartment_created_on_first_push": True}
    created = await web.post("/ui/admin/compartments", allow_redirects=False,
                             data={"csrf_token": token, "name": "research", "description": "R&D"})  # fmt: skip
    assert created.status == 303
    assert (await api(web, "GET", "/api/v1/compartments/research", 200))["description"] == "R&D"
    bad = await web.post("/ui/admin/compartments", data={"csrf_token": token, "name": "Not Valid"})
    assert bad.status == 422


async def test_unknown_pages_and_bad_parameters_are_pages_not_errors(web: Client) -> None:
    assert (await sign_in(web, ADMIN)).status == 303
    for path, status in [("/ui/nothing/here", 404), ("/ui/r/acme/open/-/versions?limit=0", 422),
                         ("/ui/audit?page=abc", 422), ("/ui/models?min_params=lots", 200),
                         ("/ui/r/acme/open/-/versions/v1/diff/v2", 404), ("/ui/r/ACME/Bad Name", 404)]:  # fmt: skip
        response = await web.get(path)
        assert response.status == status, path
        assert response.content_type == "text/html", path
    models = await (await web.get("/ui/models?min_params=lots")).text()
    assert "not a parameter count" in models


async def test_compartment_bindings_and_refused_members(web: Client) -> None:
    assert (await sign_in(web, ADMIN)).status == 303
    page = await web.get("/ui/access/compartments/acme")
    html = await page.text()
    assert page.status == 200 and "Role bindings on compartment acme" in html
    form = {"csrf_token": csrf_of(html), "action": "add", "role": "writer", "member": "group:ml", "etag": ""}
    assert (await web.post("/ui/access/compartments/acme", data=form, allow_redirects=False)).status == 303
    policy = await api(web, "GET", "/api/v1/compartments/acme/iam", 200)
    assert policy["bindings"] == [{"role": "writer", "members": ["group:ml"]}]
    stale = await web.post("/ui/access/compartments/acme", data={**form, "member": "group:other"})
    assert stale.status == 409  # the page's etag is no longer the policy's: nothing is overwritten
    for bad in ({"member": "bob"}, {"role": "owner"}):
        refused = await web.post("/ui/access/compartments/acme", data={**form, **bad})
        assert refused.status == 422
    assert (await web.get("/ui/access/compartments/nothing")).status == 404
    assert await api(web, "GET", "/api/v1/compartments/acme/iam", 200) == policy


async def test_with_auth_off_everything_is_open_but_forms_still_need_the_token(client: Client) -> None:
    await client.post("/api/v1/compartments", json={"name": "acme"})
    created = await client.post("/api/v1/repositories", json={"compartment_id": "acme", "display_name": "llm"})
    assert created.status == 201
    page = await client.get("/ui/r/acme/llm")
    html = await page.text()
    assert page.status == 200 and "Edit settings" in html and "auth off" in html
    refused = await client.post("/ui/r/acme/llm/-/settings", data={"description": "x"})
    assert refused.status == 403
    form = {"csrf_token": csrf_of(html), "description": "open model", "readme": ""}
    saved = await client.post("/ui/r/acme/llm/-/settings", allow_redirects=False, data=form)
    assert saved.status == 303
    assert (await (await client.get("/api/v1/repositories/acme/llm")).json())["description"] == "open model"

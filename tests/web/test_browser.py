"""The web UI in a real browser (headless Chromium, ``browser.py``) against a real registry
seeded over HTTP (``seed.py``): sign in, search, open a model, read its card, download a file,
grant a role and see the member's access change, a reader refused, a forged post refused, a
hostile README inert. Screenshots of the main pages go to ``test-artifacts/web/`` (not
committed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect

from tests.auth.support import ADMIN_PASSWORD, OCI_MANIFEST, Registry
from tests.cli.liveserver import LiveServer, live_server
from tests.web.browser import ARTIFACTS, chromium
from tests.web.seed import READER, REPO, Seeded, seed

pytestmark = pytest.mark.slow
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded, Path]]:
    root = tmp_path_factory.mktemp("web-ui")
    with live_server(data_dir=root / "data", auth_enabled=True, admin_password=ADMIN_PASSWORD) as server:
        yield server, seed(server.url, root / "models"), root / "models"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def signed_in(browser: Browser, url: str, user: tuple[str, str], **options: object) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=url, accept_downloads=True, **options)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto("/ui/login")
    page.get_by_label("User name or email").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("viewer")).to_have_text(f"user:{user[0]}")
    return context, page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sign_in_search_open_a_model_read_its_card_and_download_a_file(
    registry: tuple[LiveServer, Seeded, Path], browser: Browser
) -> None:
    server, _seeded, models = registry
    context, page = signed_in(browser, server.url, ADMIN, viewport={"width": 1280, "height": 900})
    try:
        page.get_by_label("Name or description contains").fill("language")
        page.get_by_role("button", name="Filter").click()
        table = page.get_by_test_id("repositories")
        expect(table.get_by_role("link", name=REPO)).to_be_visible()
        expect(table.get_by_role("link", name="acme/public-demo")).to_have_count(0)
        shot(page, "home")

        page.get_by_role("link", name="Models", exact=True).click()
        page.get_by_label("Architecture").fill("llama")
        page.get_by_role("button", name="Search").click()
        results = page.get_by_test_id("model-results")
        expect(results.get_by_role("link", name=REPO)).to_have_count(2)  # v1 and v2
        shot(page, "models")

        page.goto(f"/ui/r/{REPO}/-/versions/v1")
        expect(page.get_by_test_id("card")).to_contain_text("tiny-llama")
        expect(page.get_by_test_id("referrer-markdown")).to_contain_text("The model scores 0.91 on the test set.")
        expect(page.get_by_test_id("referrer-json")).to_contain_text('"dataset": "acme-eval"')
        expect(page.get_by_test_id("config")).to_contain_text('"format": "safetensors"')
        expect(page.get_by_test_id("descendants")).to_contain_text("application/vnd.acme.model-card.v1")
        shot(page, "version")
        page.get_by_label("Compare v1 with").select_option("v2")
        page.get_by_role("button", name="Show the diff").click()
        changes = page.get_by_test_id("diff-files")
        expect(changes.get_by_role("row").filter(has_text="src/modeling.py")).to_contain_text("added")
        expect(changes.get_by_role("row").filter(has_text="model.safetensors")).to_contain_text("changed")
        shot(page, "diff")
        page.goto(f"/ui/r/{REPO}/-/versions/v1")

        with page.expect_download() as info:
            page.get_by_role("link", name="Download config.json").click()
        download = info.value
        assert download.suggested_filename == "config.json"
        assert Path(download.path()).read_bytes() == (models / "v1" / "config.json").read_bytes()
        assert json.loads(Path(download.path()).read_text())["model_type"] == "llama"

        page.goto(f"/ui/r/{REPO}/-/versions")
        row = page.get_by_test_id("versions").get_by_role("row").filter(has_text="v1")
        expect(row.first).to_contain_text("prod")  # the alias, as a badge of the version it points at
        expect(row.first).to_contain_text("llama")
        shot(page, "versions")
        page.goto(f"/ui/r/{REPO}")
        shot(page, "repository")
        for name, path in [("access", "/ui/access"), ("audit", "/ui/audit"), ("admin", "/ui/admin")]:
            page.goto(path)
            shot(page, name)
        acme = page.get_by_test_id("compartments").get_by_role("row").filter(has_text="ACME ML")
        expect(acme).to_contain_text("KiB")  # the pushed model's bytes, charged to the compartment
    finally:
        context.close()


def test_a_readme_with_script_and_javascript_links_is_inert(
    registry: tuple[LiveServer, Seeded, Path], browser: Browser
) -> None:
    server, _seeded, _models = registry
    context, page = signed_in(browser, server.url, ADMIN)
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    try:
        page.goto(f"/ui/r/{REPO}")
        readme = page.get_by_test_id("readme")
        expect(readme.get_by_role("heading", name="ACME LLM")).to_be_visible()
        expect(readme.get_by_role("cell", name="0.91")).to_be_visible()
        title = page.title()
        readme.get_by_text("html link").click()
        page.wait_for_timeout(300)
        assert page.title() == title and "pwned" not in page.title()
        assert page.url.endswith(f"/ui/r/{REPO}")
        assert readme.locator("script, [onclick], [onerror], a[href^='javascript']").count() == 0
        assert readme.locator("img[src*='tracker.example']").count() == 0
        assert dialogs == []
    finally:
        context.close()


def test_grant_a_role_and_the_member_sees_the_repository(
    registry: tuple[LiveServer, Seeded, Path], browser: Browser
) -> None:
    server, _seeded, _models = registry
    bob_context, bob = signed_in(browser, server.url, READER)
    admin_context, admin = signed_in(browser, server.url, ADMIN)
    try:
        bob.goto("/ui/")
        expect(bob.get_by_role("link", name=REPO)).to_have_count(0)
        assert bob.goto(f"/ui/r/{REPO}").status == 404  # type: ignore[union-attr]

        admin.goto(f"/ui/r/{REPO}/-/access")
        admin.get_by_label("Role", exact=True).select_option("reader")
        admin.get_by_label("Member", exact=True).fill("user:bob")
        admin.get_by_role("button", name="Grant").click()
        expect(admin.get_by_role("status")).to_have_text("user:bob granted reader.")
        expect(admin.get_by_test_id("bindings")).to_contain_text("user:bob")

        bob.goto("/ui/")
        expect(bob.get_by_role("link", name=REPO)).to_be_visible()
        assert bob.goto(f"/ui/r/{REPO}").status == 200  # type: ignore[union-attr]
        expect(bob.get_by_test_id("readme")).to_contain_text("A small model for tests.")

        admin.get_by_role("button", name="Remove user:bob from reader").click()
        expect(admin.get_by_role("status")).to_have_text("user:bob removed from reader.")
        assert bob.goto(f"/ui/r/{REPO}").status == 404  # type: ignore[union-attr]
    finally:
        bob_context.close()
        admin_context.close()


def test_a_reader_is_refused_what_it_may_not_do(registry: tuple[LiveServer, Seeded, Path], browser: Browser) -> None:
    server, _seeded, _models = registry
    admin_context, admin = signed_in(browser, server.url, ADMIN)
    bob_context, bob = signed_in(browser, server.url, READER)
    try:
        admin.goto(f"/ui/r/{REPO}/-/access")
        admin.get_by_label("Role", exact=True).select_option("reader")
        admin.get_by_label("Member", exact=True).fill("user:bob")
        admin.get_by_role("button", name="Grant").click()
        expect(admin.get_by_test_id("bindings")).to_contain_text("user:bob")

        bob.goto(f"/ui/r/{REPO}")
        expect(bob.get_by_text("Edit settings")).to_have_count(0)
        expect(bob.get_by_role("link", name="Access")).to_have_count(0)
        # Bob's own valid CSRF token (from the sign-out form) does not make him an administrator.
        token = bob.locator("input[name=csrf_token]").first.get_attribute("value")
        refused = bob.request.post(
            f"/ui/r/{REPO}/-/settings", form={"csrf_token": token or "", "description": "defaced", "readme": "x"}
        )
        assert refused.status == 403
        assert "lacks repository.configure" in refused.text()
        for path in ("/ui/access", "/ui/audit", "/ui/admin"):
            response = bob.goto(path)
            assert response is not None and response.status == 403, path
            expect(bob.get_by_role("heading", name="Not allowed")).to_be_visible()
        admin.goto(f"/ui/r/{REPO}")
        expect(admin.get_by_text("defaced")).to_have_count(0)
    finally:
        bob_context.close()
        admin_context.close()


def test_a_post_without_the_csrf_token_is_refused(registry: tuple[LiveServer, Seeded, Path], browser: Browser) -> None:
    server, _seeded, _models = registry
    context, page = signed_in(browser, server.url, ADMIN)
    try:
        grant: dict[str, str | float | bool] = {"action": "add", "role": "admin", "member": "user:bob"}
        assert page.request.post("/ui/access", form=grant).status == 403
        # A forged cross-site form (a page of another origin) posting to the registry.
        page.set_content(
            f'<form method="post" action="{server.url}/ui/access">'
            + "".join(f'<input name="{k}" value="{v}">' for k, v in grant.items())
            + '<button type="submit">win a prize</button></form>'
        )
        page.get_by_role("button", name="win a prize").click()
        expect(page.get_by_role("heading", name="Form expired")).to_be_visible()
        page.goto("/ui/access")
        admin_row = page.get_by_test_id("bindings").get_by_role("row").filter(has_text="admin")
        expect(admin_row).not_to_contain_text("user:bob")
    finally:
        context.close()


def test_move_an_alias_and_roll_it_back(registry: tuple[LiveServer, Seeded, Path], browser: Browser) -> None:
    server, seeded, _models = registry
    context, page = signed_in(browser, server.url, ADMIN, viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"/ui/r/{REPO}/-/aliases")
        panel = page.locator("section[data-alias=prod]")
        expect(panel.get_by_role("heading", name="prod → v1")).to_be_visible()

        panel.get_by_label("Point prod at").fill("v2")
        panel.get_by_label("Reason for the move").fill("promote v2 after review")
        panel.get_by_role("button", name="Move prod").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Move prod to the chosen version?")
        dialog.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("status")).to_have_text("prod now points at v2.")
        expect(panel.get_by_role("heading", name="prod → v2")).to_be_visible()
        timeline = page.get_by_test_id("timeline-prod")
        expect(timeline.get_by_role("listitem").first).to_contain_text("api: v1 → v2")
        expect(timeline.get_by_role("listitem").first).to_contain_text("user:admin")
        expect(timeline.get_by_role("listitem").first).to_contain_text("promote v2 after review")

        # Cancelling the confirmation sends nothing.
        panel.get_by_role("button", name="Roll back prod").click()
        page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
        expect(panel.get_by_role("heading", name="prod → v2")).to_be_visible()

        panel.get_by_label("Reason for the rollback").fill("v2 regressed on eval")
        panel.get_by_role("button", name="Roll back prod").click()
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("status")).to_have_text("prod rolled back to v1.")
        expect(timeline.get_by_role("listitem").first).to_contain_text("rollback: v2 → v1")
        expect(timeline.get_by_role("listitem").first).to_contain_text("v2 regressed on eval")
        shot(page, "aliases")
        head = httpx.head(f"{server.url}/v2/{REPO}/manifests/prod", auth=None, headers={
            "Authorization": "Bearer " + Registry(server.url).token(f"repository:{REPO}:pull", auth=ADMIN),
            "Accept": OCI_MANIFEST,
        })  # fmt: skip
        assert head.headers["Docker-Content-Digest"] == seeded.v1
    finally:
        context.close()


def test_a_reader_gets_no_rollback_button_and_the_server_refuses_one(
    registry: tuple[LiveServer, Seeded, Path], browser: Browser
) -> None:
    server, _seeded, _models = registry
    admin_context, admin = signed_in(browser, server.url, ADMIN)
    bob_context, bob = signed_in(browser, server.url, READER)
    try:
        admin.goto(f"/ui/r/{REPO}/-/access")
        admin.get_by_label("Role", exact=True).select_option("reader")
        admin.get_by_label("Member", exact=True).fill("user:bob")
        admin.get_by_role("button", name="Grant").click()
        expect(admin.get_by_test_id("bindings")).to_contain_text("user:bob")
        bob.goto(f"/ui/r/{REPO}/-/aliases")
        expect(bob.get_by_test_id("timeline-prod")).to_be_visible()
        expect(bob.get_by_role("button", name="Roll back prod")).to_have_count(0)
        token = bob.locator("input[name=csrf_token]").first.get_attribute("value") or ""
        refused = bob.request.post(f"/ui/r/{REPO}/-/aliases/prod/rollback", form={"csrf_token": token})
        assert refused.status == 403
        admin.goto(f"/ui/r/{REPO}/-/aliases")
        expect(admin.get_by_test_id("timeline-prod").get_by_role("listitem").first).not_to_contain_text("user:bob")
    finally:
        bob_context.close()
        admin_context.close()


def test_keyboard_sign_in_and_a_phone_sized_screen(registry: tuple[LiveServer, Seeded, Path], browser: Browser) -> None:
    """Sign in with the keyboard alone (skip link first), and pages that fit a phone's width."""
    server, _seeded, _models = registry
    context = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto("/ui/")
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.goto("/ui/login")
        expect(page.get_by_label("User name or email")).to_be_focused()  # autofocus
        page.keyboard.type(ADMIN[0])
        page.keyboard.press("Tab")
        expect(page.get_by_label("Password")).to_be_focused()
        page.keyboard.type(ADMIN[1])
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("viewer")).to_have_text("user:admin")
        phone_pages = [
            ("phone-repository", f"/ui/r/{REPO}"),
            ("phone-version", f"/ui/r/{REPO}/-/versions/v1"),
            ("phone-versions", f"/ui/r/{REPO}/-/versions"),
            ("phone-aliases", f"/ui/r/{REPO}/-/aliases"),
        ]
        for name, path in phone_pages:
            page.goto(path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the screen"
            shot(page, name)
    finally:
        context.close()

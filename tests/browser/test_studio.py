"""The studio in a real browser, against a real server on the demo warehouse.

Signing in; building an audience with a nested group through the condition editor, whose
size (and each top-level condition's size) must be what `corral audience preview` says;
a sync of that audience to the demo's CSV exports, run from its page, whose added count
must be the audience's size; and a full-page screenshot of each main screen, kept in
test-artifacts/screenshots/.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, Locator, Page, expect

from corral.workspace import load_workspace
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, RunningStudio

pytestmark = pytest.mark.browser

AUDIENCE = "North Americans buying often or lately"
SYNC = "Frequent North Americans to CSV"
# How long a sync run may take on a loaded machine.
RUN_TIMEOUT_MS = 120_000


def sign_in(page: Page, studio: RunningStudio, password: str = ADMIN_PASSWORD) -> None:
    page.goto(studio.url + "/")
    page.get_by_test_id("login-email").fill(ADMIN_EMAIL)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


def pick(page: Page, field: Locator, option: str, *, exact: bool = True) -> None:
    """Choose `option` in a Mantine select: open it, click the option by its text."""
    field.click()
    page.get_by_role("option", name=option, exact=exact).first.click()


def shown_count(cell: Locator) -> int:
    """A count as the studio prints it ("1,234")."""
    return int(cell.inner_text().replace(",", "").strip())


def settled_size(page: Page) -> int:
    """The live size once every condition is complete and the last edit is measured."""
    expect(page.get_by_test_id("condition-problem")).to_have_count(0)
    expect(page.get_by_test_id("size-updating")).to_have_count(0)
    return int(page.get_by_test_id("audience-size").get_attribute("data-size") or "")


def save_screenshot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


# -- the audience, built once through the builder --------------------------------------------


@dataclass(frozen=True)
class BuiltAudience:
    name: str
    size: int  # shown by the builder after saving and opening it again
    block_sizes: list[int]  # the badges next to the top-level conditions


def build_nested_audience(page: Page) -> None:
    """all of: country in [US, CA], and any of (order_count >= 3, order_completed in the
    last 90 days), typed and picked as a user would."""
    page.get_by_test_id("new-audience").click()
    page.get_by_test_id("audience-name").fill(AUDIENCE)
    root = page.get_by_test_id("condition-root")
    root_id = root.get_attribute("data-group-id")
    add_to_root = page.locator(f'[data-testid="add-condition"][data-group-id="{root_id}"]')

    add_to_root.click()
    page.get_by_test_id("add-property").click()
    country = page.locator('[data-testid="condition"][data-kind="property"]')
    pick(page, country.get_by_test_id("condition-column"), "country")
    pick(page, country.get_by_test_id("condition-operator"), "is one of")
    values = country.get_by_test_id("condition-value")
    for value in ("US", "CA"):
        values.press_sequentially(value)
        values.press("Enter")
    page.keyboard.press("Escape")

    add_to_root.click()
    page.get_by_test_id("add-group").click()
    group = page.get_by_test_id("condition-group")
    group.get_by_test_id("group-match").get_by_text("any of").click()
    add_to_group = group.locator('[data-testid="add-condition"]').last

    add_to_group.click()
    page.get_by_test_id("add-trait").click()
    trait = group.locator('[data-testid="condition"][data-kind="trait"]')
    pick(page, trait.get_by_test_id("condition-trait"), "order_count")
    pick(page, trait.get_by_test_id("condition-operator"), "is at least")
    trait.get_by_test_id("condition-value").fill("3")

    add_to_group.click()
    page.get_by_test_id("add-event").click()
    event = group.locator('[data-testid="condition"][data-kind="event"]')
    event.get_by_test_id("condition-event").fill("order_completed")
    page.keyboard.press("Escape")
    expect(event.get_by_test_id("condition-measure")).to_have_value("performed")
    pick(page, event.get_by_test_id("window-kind"), "in the last")
    event.get_by_test_id("window-duration").fill("90")
    expect(event.get_by_label("Unit")).to_have_value("days")


@pytest.fixture(scope="module")
def built_audience(
    studio: RunningStudio, studio_browser: Browser, screenshots: Path
) -> Iterator[BuiltAudience]:
    context = studio_browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    sign_in(page, studio)
    expect(page.get_by_test_id("audiences-table")).to_be_visible()
    save_screenshot(page, screenshots, "02-audiences")

    build_nested_audience(page)
    settled_size(page)
    page.get_by_test_id("save-audience").click()
    expect(page.get_by_test_id("unsaved")).to_have_count(0)

    # Open it again from the list: the builder now shows the definition as saved.
    page.get_by_test_id("nav-audiences").click()
    page.locator(f'[data-testid="audience-row"][data-name="{AUDIENCE}"]').get_by_text(
        AUDIENCE, exact=True
    ).click()
    expect(page.get_by_test_id("audience-name")).to_have_value(AUDIENCE)
    size = settled_size(page)
    blocks = page.get_by_test_id("condition-root").get_by_test_id("block-size")
    expect(blocks).to_have_count(2)
    block_sizes = [shown_count(badge) for badge in blocks.all()]
    save_screenshot(page, screenshots, "03-audience-builder")
    yield BuiltAudience(AUDIENCE, size, block_sizes)
    context.close()


# -- tests ------------------------------------------------------------------------------------


def test_sign_in_form_refuses_a_wrong_password_then_lets_the_admin_in(
    page: Page, studio: RunningStudio, screenshots: Path
) -> None:
    sign_in(page, studio, password="not the password at all")
    expect(page.get_by_test_id("login-error")).to_be_visible()
    save_screenshot(page, screenshots, "01-login")

    page.get_by_test_id("login-password").fill(ADMIN_PASSWORD)
    page.get_by_test_id("login-password").press("Enter")
    expect(page.get_by_test_id("nav-audiences")).to_be_visible()
    expect(page.get_by_test_id("login-email")).to_have_count(0)
    expect(page).to_have_url(f"{studio.url}/audiences")


def test_nested_audience_saved_from_the_builder(
    built_audience: BuiltAudience, studio: RunningStudio
) -> None:
    saved = load_workspace(studio.workspace).audience_files[AUDIENCE]
    conditions = yaml.safe_load(saved.read_text())["conditions"]
    assert [c["kind"] for c in conditions] == ["property", "group"]
    assert conditions[0] | {"value": sorted(conditions[0]["value"])} == {
        "kind": "property",
        "column": "country",
        "operator": "in",
        "value": ["CA", "US"],
    }
    group = conditions[1]
    assert group["match"] == "any"
    assert [c["kind"] for c in group["conditions"]] == ["trait", "event"]
    assert group["conditions"][0] | {"value": float(group["conditions"][0]["value"])} == {
        "kind": "trait",
        "trait": "order_count",
        "operator": "at_least",
        "value": 3.0,
    }
    event = group["conditions"][1]
    assert event["event"] == "order_completed"
    assert event["within"] == {"kind": "last", "duration": {"amount": 90, "unit": "days"}}


def test_builder_shows_the_same_sizes_as_the_cli(
    built_audience: BuiltAudience, studio: RunningStudio
) -> None:
    cli = studio.cli_preview(AUDIENCE)

    assert built_audience.size == cli["size"]
    assert 0 < cli["size"] < cli["parent_rows"]
    assert built_audience.block_sizes == [block["size"] for block in cli["blocks"]]


def test_sync_run_from_its_page_sends_every_member(
    page: Page, built_audience: BuiltAudience, studio: RunningStudio, screenshots: Path
) -> None:
    sign_in(page, studio)
    page.get_by_test_id("nav-syncs").click()
    page.get_by_test_id("new-sync").click()
    page.get_by_test_id("sync-name").fill(SYNC)
    pick(page, page.get_by_test_id("sync-audience"), AUDIENCE)
    pick(page, page.get_by_test_id("sync-destination"), "CSV exports (", exact=False)
    pick(page, page.get_by_test_id("sync-mode"), "upsert: add and change")
    mapping = page.get_by_test_id("mapping-row").first
    mapping.get_by_test_id("mapping-field").fill("email")
    page.keyboard.press("Escape")
    pick(page, mapping.get_by_test_id("mapping-column"), "Email (email)")
    page.get_by_test_id("save-sync").click()

    expect(page.get_by_test_id("run-now")).to_be_visible()
    expect(page.get_by_test_id("runs-empty")).to_be_visible()
    page.get_by_test_id("run-now").click()
    run = page.get_by_test_id("run-row").first
    expect(run).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("sync-status")).to_have_text("succeeded")
    save_screenshot(page, screenshots, "04-sync-with-run")

    assert shown_count(run.get_by_test_id("run-added")) == built_audience.size
    for column in ("changed", "removed", "rejected"):
        assert shown_count(run.get_by_test_id(f"run-{column}")) == 0
    run_id = run.get_attribute("data-run-id")
    files = list((studio.workspace / "exports").glob(f"*/{run_id}/added-*.csv"))
    assert files, f"run {run_id} wrote no CSV under {studio.workspace / 'exports'}"
    rows = [row for path in files for row in csv.DictReader(path.open(newline=""))]
    assert len(rows) == built_audience.size
    assert all("@" in row["email"] for row in rows)


def test_destinations_schema_and_settings_screens(
    page: Page, studio: RunningStudio, screenshots: Path
) -> None:
    sign_in(page, studio)
    page.get_by_test_id("nav-destinations").click()
    rows = page.get_by_test_id("destination-row")
    expect(rows).to_have_count(3)
    expect(page.locator('[data-testid="destination-row"][data-name="CSV exports"]')).to_be_visible()
    save_screenshot(page, screenshots, "05-destinations")

    page.get_by_test_id("nav-schema").click()
    page.get_by_test_id("tab-relationships").click()
    diagram = page.get_by_test_id("relationship-diagram")
    expect(diagram).to_be_visible()
    models = load_workspace(studio.workspace).schema
    expect(diagram.locator(".react-flow__node")).to_have_count(1 + len(models.models))
    readable_inside(diagram)
    expect(diagram.get_by_text("purchased_products: through purchases → products")).to_be_visible()
    save_screenshot(page, screenshots, "06-schema-relationships")

    page.get_by_test_id("tab-models").click()
    page.get_by_test_id("schema-model").first.click()
    expect(page.get_by_test_id("model-columns")).to_contain_text("primary key")
    save_screenshot(page, screenshots, "08-schema-models")

    page.get_by_test_id("nav-settings").click()
    users = page.get_by_test_id("users-table")
    expect(users).to_contain_text(ADMIN_EMAIL)
    save_screenshot(page, screenshots, "07-settings-users")

    page.get_by_test_id("tab-roles").click()
    page.get_by_role("button", name="Add a role").click()
    expect(page.get_by_test_id("role-scope")).to_have_count(11)  # the scoped permissions
    save_screenshot(page, screenshots, "09-settings-role")
    page.keyboard.press("Escape")

    page.get_by_test_id("nav-sources").click()
    page.get_by_test_id("test-source").click()
    expect(page.get_by_test_id("source-test-result")).to_be_visible()
    save_screenshot(page, screenshots, "10-sources")


def readable_inside(diagram: Locator) -> None:
    """Every model card of the diagram is drawn whole inside it, large enough to read
    without zooming, and no two overlap."""
    frame = diagram.bounding_box()
    assert frame is not None
    boxes = [card.bounding_box() for card in diagram.get_by_test_id("diagram-model").all()]
    assert boxes and all(box is not None for box in boxes)
    for box in boxes:
        assert box is not None and box["width"] >= 150, box
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
        assert frame["y"] <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a is not None and b is not None
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, (a, b)


def test_the_audiences_list_measures_every_audience_in_the_background(
    page: Page, studio: RunningStudio, screenshots: Path
) -> None:
    sign_in(page, studio)
    cells = page.get_by_test_id("audience-size-cell")
    names = sorted(load_workspace(studio.workspace).audiences)
    expect(cells).to_have_count(len(names))
    for cell in cells.all():
        expect(cell).not_to_have_attribute("data-size", "", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("size-measuring")).to_have_count(0)
    save_screenshot(page, screenshots, "11-audiences-measured")

    vips = page.locator('[data-testid="audience-row"][data-name="VIPs"]')
    shown = vips.get_by_test_id("audience-size-cell")
    expect(shown).to_have_attribute("data-stale", "false")
    assert int(shown.get_attribute("data-size") or "") == studio.cli_preview("VIPs")["size"]
    expect(shown).to_contain_text("measured")

    # Kept by the server: a new page shows the sizes at once, without measuring again.
    page.reload()
    expect(cells).to_have_count(len(names))
    for cell in cells.all():
        assert cell.get_attribute("data-size"), cell.inner_text()

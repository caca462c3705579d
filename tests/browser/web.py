"""The web app as a test drives it: open, sign in, wait for the service worker, take screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.support import DEMO_PASSWORD, ROOT

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Bounded waits: generous for a machine shared with other builds, never a fixed sleep.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)

DEVICES: dict[str, dict[str, Any]] = {
    "tablet": {"viewport": {"width": 1024, "height": 768}, "has_touch": True},
    "tablet-portrait": {"viewport": {"width": 768, "height": 1024}, "has_touch": True},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1440, "height": 900}},
}


@dataclass
class WebApp:
    page: Any
    base: str
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.set_default_timeout(WAIT_MS)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, path: str = "/") -> None:
        self.page.goto(path)
        expect(self.page.locator("#app > *").first).to_be_visible()

    @property
    def build_id(self) -> str:
        return str(self.page.evaluate("document.documentElement.dataset.build"))

    def sign_in(self, username: str, password: str = DEMO_PASSWORD) -> None:
        """Fill and send the sign-in form (by field ids, so in any language)."""
        self.page.locator("#username").fill(username)
        self.page.locator("#password").fill(password)
        self.page.locator("form button[type=submit]").click()

    def sign_in_as(self, username: str) -> None:
        """Sign in and wait for the signed-in shell (any language)."""
        self.sign_in(username)
        expect(self.page.locator(".statusbar")).to_be_visible()

    def wait_for_service_worker(self) -> None:
        """Until a service worker controls the page, which it does once the whole build is stored."""
        self.page.wait_for_function("navigator.serviceWorker.controller !== null")

    def alert(self) -> Any:
        return self.page.get_by_role("alert")

    def unsent_status(self) -> Any:
        return self.page.get_by_role("status", name="Unsent changes")

    def shoot(self, persona: str, screen: str, device: str, lang: str) -> Path:
        """A PNG for people to look at: test-artifacts/screenshots/<persona>-<screen>-<device>-<lang>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{persona}-{screen}-{device}-{lang}.png"
        self.page.evaluate("document.fonts.ready")
        self.page.screenshot(path=str(path))
        return path


AXE = ROOT / "pwa" / "vendor" / "axe-core" / "axe.min.js"


def accessibility_violations(page: Any) -> list[str]:
    """axe-core's WCAG A/AA findings on the page as it is now, one line each."""
    page.add_script_tag(path=str(AXE))
    rules = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']"
    results = page.evaluate(f"axe.run(document, {{ runOnly: {rules} }})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])}x)" for v in results["violations"]]


TOUCH_PX = 48

# Visible controls smaller than a fingertip (the status chips are read, not touched).
SMALL_TARGETS = f"""() => [...document.querySelectorAll('button, a[href], input, select')]
    .filter((el) => el.checkVisibility())
    .map((el) => [el.outerHTML.slice(0, 80), el.getBoundingClientRect()])
    .filter(([, box]) => box.height < {TOUCH_PX} || box.width < {TOUCH_PX})
    .map(([html]) => html)"""


# Elements that reach past the right edge of the viewport (what makes a page scroll sideways).
WIDER_THAN_THE_PAGE = """() => document.scrollingElement.scrollWidth <= innerWidth ? [] :
    [...document.querySelectorAll('body *')]
    .filter((el) => el.getBoundingClientRect().right > innerWidth + 0.5)
    .map((el) => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}px`)
    .slice(0, 5)"""


def check_layout(app: WebApp) -> None:
    """What a screenshot cannot prove: no sideways scrolling, fingertip-sized controls, no axe findings."""
    wider = app.page.evaluate(WIDER_THAN_THE_PAGE)
    assert wider == [], f"the page scrolls sideways: {wider}"
    small = app.page.evaluate(SMALL_TARGETS)
    assert small == [], f"controls smaller than {TOUCH_PX} px: {small}"
    violations = accessibility_violations(app.page)
    assert violations == [], f"axe-core: {violations}"


# Every row of one store of a signed-in user's database in the page (the sync engine keeps
# one IndexedDB per user: `records` is its read model, `outbox` its queue).
READ_STORE = """async ([userId, store]) => {
    const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open('loopline-user-' + userId);
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
    });
    const rows = await new Promise((resolve) => {
        const all = db.transaction(store).objectStore(store).getAll();
        all.onsuccess = () => resolve(all.result);
    });
    db.close();
    return rows;
}"""


def stored_rows(page: Any, user_id: str, store: str = "records") -> list[Any]:
    return list(page.evaluate(READ_STORE, [user_id, store]))

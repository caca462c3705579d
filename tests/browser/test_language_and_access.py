"""Both languages and keyboard, screen reader and touch access, across every main screen.

- The language is the user's: chosen on one device, it is there after a reload and on the
  user's next device.
- In Chinese no text of the English table is left on any screen (data such as lot numbers,
  names and messages aside), and dates and numbers are written the Chinese way.
- Every screen: axe-core clean in both languages, 48 px targets, a visible focus on every
  control reached by Tab, live regions present and never nested.
- The inspection form and the message composer are completed with the keyboard alone.

`SCREENS` is the list of main screens: a new screen (cases, overview, portal) is checked by
adding its route and what shows once it is ready.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import NewContext
from tests.browser.test_screens_of_the_floor import READY, screens
from tests.browser.web import WebApp, check_layout
from tests.browser.worlds import api_as, pulled
from tests.support import DEMO_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LANGUAGES = ["en", "zh-CN"]


@dataclass(frozen=True)
class Screen:
    username: str
    name: str
    route: Callable[[dict[str, str]], str]  # from the demo world's routes (see `screens`)
    ready: Callable[[Any], Any]  # what shows once the screen has its data


def _heading(page: Any) -> Any:
    return page.locator("main h1").first


def _route_of(name: str) -> Callable[[dict[str, str]], str]:
    return lambda routes: routes[name]


SCREENS = [
    *(Screen("wang.lei", name, _route_of(name), READY[name]) for name in READY),
    # The other roles' homes, placeholders on main today: replace `_heading` by what the
    # screen shows once ready when it arrives.
    Screen("lucia.martin", "cases", lambda _: "#/cases", _heading),
    Screen("qa.manager", "overview", lambda _: "#/overview", _heading),
    Screen("customer", "portal", lambda _: "#/portal", _heading),  # made by `new_user`: the demo's was erased
]


def new_user(base: str, role: str, display_name: str) -> str:
    """A user of this module's own (the demo's customer is erased by the played scenario)."""
    username = f"{role.replace('_', '-')}.{uuid.uuid4().hex[:8]}"
    with api_as(base, "admin") as http:
        body = {"username": username, "password": DEMO_PASSWORD, "display_name": display_name, "role": role}
        created = http.post("/admin/users", json=body)
        assert created.status_code == 201, created.text
    return username


def visit(app: WebApp, route: str, ready: Callable[[Any], Any]) -> None:
    app.page.evaluate("route => { location.hash = route; }", route)
    expect(ready(app.page)).to_be_visible()


# Text on the page (text nodes and the names of controls) that is a string of the English
# table, with its placeholders standing for any value. Strings the same in both tables
# (the product's name) and content marked as another language (the language switch names
# each language in itself) are not counted.
ENGLISH_LEFT = r"""async () => {
  const build = document.documentElement.dataset.build;
  const [{ default: en }, { default: zh }] = await Promise.all([
    import(`/app/${build}/app/i18n/en.js`), import(`/app/${build}/app/i18n/zh-CN.js`),
  ]);
  const forms = (value) => (typeof value === 'object' ? Object.values(value) : [value]);
  const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const patterns = Object.entries(en)
    .filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(zh[key]))
    .flatMap(([key, value]) => forms(value).map((text) => [key, text]))
    .filter(([, text]) => /[A-Za-z]{2}/.test(text.replace(/\{\w+\}/g, '')))
    .map(([key, text]) => [key, new RegExp('^' + escape(text).replace(/\\\{\w+\\\}/g, '.+') + '$', 's')]);
  const pageLang = document.documentElement.lang;
  const foreign = (el) => (el.closest('[lang]')?.getAttribute('lang') ?? pageLang) !== pageLang;
  const found = [];
  const check = (text, where) => {
    const clean = text.replace(/\s+/g, ' ').trim();
    if (!clean) return;
    for (const [key, pattern] of patterns) if (pattern.test(clean)) found.push(`${where}: "${clean}" (${key})`);
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (el && el.checkVisibility() && !foreign(el) && !el.closest('script, style')) check(node.data, el.tagName);
  }
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title], img[alt]')) {
    if (!el.checkVisibility() || foreign(el)) continue;
    for (const name of ['aria-label', 'placeholder', 'title', 'alt']) {
      if (el.hasAttribute(name)) check(el.getAttribute(name), `${el.tagName}[${name}]`);
    }
  }
  return found;
}"""

# Dates and times that Intl wrote in English ("17 Jun 2024", "Jun 17, 2024", "5 min ago").
ENGLISH_DATES = re.compile(
    r"\b\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b"
    r"|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}, \d{4}"
    r"|\b\d+ (min|hr|minutes?|hours?|days?) ago\b|\b(AM|PM)\b"
)

# Live regions, and any that sits inside another (read twice by some screen readers).
LIVE_REGIONS = """() => {
  const live = '[aria-live], [role=status], [role=log], [role=alert]';
  const regions = [...document.querySelectorAll(live)];
  return {
    roles: regions.map((el) => el.getAttribute('role') ?? `aria-live=${el.getAttribute('aria-live')}`),
    nested: regions.filter((el) => el.parentElement.closest(live)).map((el) => el.outerHTML.slice(0, 100)),
  };
}"""

# The focused element, and whether its focus can be seen (an outline or a ring of shadow).
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const within = el.closest('.photos__add') ? getComputedStyle(el.closest('.photos__add')) : null;
  const ring = (s) => s && ((s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none');
  return { id: el.id, tag: el.tagName, text: (el.innerText || el.getAttribute('aria-label') || '').slice(0, 40),
           visible: ring(style) || ring(within) };
}"""


def tab(app: WebApp, shift: bool = False) -> dict[str, Any]:
    app.page.keyboard.press("Shift+Tab" if shift else "Tab")
    focused: dict[str, Any] | None = app.page.evaluate(FOCUS)
    assert focused is not None, "Tab left the page's controls"
    assert focused["visible"], f"no visible focus on {focused}"
    return focused


def tab_to(app: WebApp, selector: str, limit: int = 80) -> None:
    """Tab (checking the focus is visible each time) until the element matching `selector` has focus."""
    for _ in range(limit):
        tab(app)
        if app.page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with Tab")


def check_focus_order(app: WebApp, limit: int = 40) -> None:
    """Every control reached by Tab from the top of the page shows its focus, to the page's end."""
    app.page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)")
    seen: set[tuple[str, str, str]] = set()
    for _ in range(limit):
        app.page.keyboard.press("Tab")
        focused = app.page.evaluate(FOCUS)
        if focused is None or (key := (focused["id"], focused["tag"], focused["text"])) in seen:
            break  # past the last control (to the browser's own) or round to the first
        assert focused["visible"], f"no visible focus on {focused}"
        seen.add(key)
    assert seen, "no control reached with Tab"


def in_spec(characteristic: dict[str, Any]) -> float:
    """A value well inside the characteristic's limits (its nominal, or half its upper limit)."""
    nominal = characteristic["nominal"]
    return float(nominal) if nominal is not None else float(characteristic["usl"]) / 2


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_main_screen_in_both_languages(scenario: tuple[Any, str], new_context: NewContext, lang: str) -> None:
    _, base = scenario
    routes = screens(scenario)
    usernames = {"customer": new_user(base, "customer", "Taller Nuevo")}
    found: dict[str, list[str]] = {}
    apps: dict[str, WebApp] = {}
    signed_out = WebApp(new_context(base, locale=lang).new_page(), base)
    signed_out.open()
    signed_out.sign_in("wang.lei", "not-the-password")
    expect(signed_out.alert()).to_be_visible()
    check_layout(signed_out)
    signed_out.shoot("lang", "signin-error", "tablet", lang)
    check_focus_order(signed_out)
    if lang == "zh-CN":
        found["signin"] = signed_out.page.evaluate(ENGLISH_LEFT)
    for screen in SCREENS:
        if screen.username not in apps:
            apps[screen.username] = WebApp(new_context(base, locale=lang).new_page(), base)
            apps[screen.username].open()
            apps[screen.username].sign_in_as(usernames.get(screen.username, screen.username))
        app = apps[screen.username]
        visit(app, screen.route(routes), screen.ready)
        assert app.page.evaluate("document.documentElement.lang") == lang
        check_layout(app)
        app.shoot("lang", screen.name, "tablet", lang)
        check_focus_order(app)
        live = app.page.evaluate(LIVE_REGIONS)
        assert live["nested"] == [], f"{screen.name}: live regions inside live regions"
        assert "status" in live["roles"], f"{screen.name}: the sync status is not a live region"
        if screen.name == "thread":
            assert live["roles"].count("log") == 1
        if lang == "zh-CN":
            text = app.page.inner_text("body")
            found[screen.name] = app.page.evaluate(ENGLISH_LEFT) + [
                f'date or time in English: "{m.group(0)}"' for m in ENGLISH_DATES.finditer(text)
            ]
            # Chinese fonts first, so CJK punctuation is not drawn from a Latin font.
            font = app.page.evaluate("getComputedStyle(document.body).fontFamily")
            assert font.lstrip('"').startswith(("PingFang SC", "Hiragino", "Noto Sans CJK SC", "Source Han")), font
    assert {name: texts for name, texts in found.items() if texts} == {}
    for app in [signed_out, *apps.values()]:
        assert app.errors == []


def test_the_language_is_the_users_on_every_device(server: str, new_context: NewContext) -> None:
    username = new_user(server, "service_rep", "Lan Ge")  # of this test's own: others' languages stay
    first = WebApp(new_context(server, locale="en").new_page(), server)
    first.open()
    first.sign_in_as(username)
    first.page.get_by_label("Language").first.select_option(label="中文")
    expect(first.page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(first.page.get_by_role("link", name="会话")).to_be_visible()
    expect(first.page.get_by_role("status", name="未发送的更改")).to_contain_text("所有更改已发送")
    first.page.reload()
    expect(first.page.get_by_role("link", name="会话")).to_be_visible()

    second = WebApp(new_context(server, locale="en").new_page(), server)
    second.open()
    expect(second.page.get_by_role("button", name="Sign in")).to_be_visible()  # the browser's language
    second.sign_in_as(username)
    expect(second.page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(second.page.get_by_role("link", name="会话")).to_be_visible()

    # Back to English on the second device: the first one follows, without a reload.
    second.page.get_by_label("语言").first.select_option(label="English")
    expect(first.page.get_by_role("link", name="Threads")).to_be_visible()
    expect(first.page.locator("html")).to_have_attribute("lang", "en")
    assert first.errors == []
    assert second.errors == []


def test_an_inspection_and_a_message_with_the_keyboard_alone(
    scenario: tuple[Any, str], new_context: NewContext
) -> None:
    _, base = scenario
    held = pulled(base, "wang.lei")
    [batch] = [row for row in held["batch"] if row["lot_no"] == "CN-SZ-L2-2406-018"]
    nominal = {
        row["code"]: row["nominal"] if row["nominal"] is not None else row["usl"] / 2 for row in held["characteristic"]
    }
    routes = screens(scenario)
    app = WebApp(new_context(base).new_page(), base)
    app.open()
    app.page.locator("#username").focus()  # where a person starts typing on the sign-in screen
    app.page.keyboard.type("wang.lei")
    tab(app)
    app.page.keyboard.type("loopline-demo")
    app.page.keyboard.press("Enter")
    expect(app.page.locator(".statusbar")).to_be_visible()

    expect(READY["batches"](app.page)).to_be_visible()  # the first sync is in
    visit(app, routes["inspection-form"], READY["inspection-form"])
    samples = app.page.locator(".sample__input")
    for _ in range(samples.count()):
        tab_to(app, ".sample__input")
        code = str(app.page.evaluate("document.activeElement.id")).removeprefix("m-").split(":")[0]
        app.page.keyboard.type(str(nominal[code]))
    expect(app.page.get_by_role("status").filter(has_text="Result: pass")).to_contain_text(
        f"{samples.count()} of {samples.count()} values entered"
    )
    tab_to(app, "#inspection-notes")
    app.page.keyboard.type("Entered with the keyboard alone.")
    tab_to(app, "button[type=submit]")
    app.page.keyboard.press("Enter")
    expect(app.page.get_by_role("heading", name=batch["lot_no"], exact=True)).to_be_visible()
    expect(app.unsent_status()).to_contain_text("All changes sent")

    visit(app, routes["thread"], READY["thread"])
    tab_to(app, "#message-body")
    app.page.keyboard.type("Typed and sent without a mouse.")
    tab_to(app, "form.composer button[type=submit]")
    app.page.keyboard.press("Enter")
    log = app.page.get_by_role("log", name="Messages")
    expect(log.get_by_role("listitem").filter(has_text="Typed and sent without a mouse.")).to_have_count(1)
    expect(app.unsent_status()).to_contain_text("All changes sent")
    assert app.errors == []

    held = pulled(base, "wang.lei")
    assert [row["notes"] for row in held["inspection"] if row["batch_id"] == batch["id"]].count(
        "Entered with the keyboard alone."
    ) == 1
    assert [row["body"] for row in held["message"]].count("Typed and sent without a mouse.") == 1

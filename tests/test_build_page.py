"""The build page in a real browser: the DAG drawn and moved live by the event stream, which
resumes after a dropped connection; findings, fixes and agent runs masked; who may open it."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from bot.app import create_app
from bot.auth import Scope, capability, capability_grant, create_token
from bot.build_results import GROUP_LIMIT, group_findings
from bot.build_view import STATUS_COLOURS, depths, layout, score_of
from bot.models import BuildStatus, Task, TaskStatus
from localhub import serving
from orchestrator.events import EventType
from orchestrator.pr_scan import PR_SCAN_DAG, build_url
from orchestrator.transitions import Change
from tests.build_pages import (
    REPORT,
    SECRET,
    add_fix_attempt_and_agent_run,
    add_installation,
    move,
    node,
    scanned_build,
)
from tests.dropping_proxy import DroppingProxy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTEFACTS_VARIABLE = "CLARITY_TEST_ARTEFACTS"
chromium_only = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
)


@pytest.fixture
def database_url(postgresql_database: str) -> str:
    # PostgreSQL only: the page reads what `/v1` reads, which test_api runs on both backends.
    return postgresql_database


@pytest.fixture
async def site(db, queue, make_settings):
    """The app, served behind a proxy that can drop its connections."""
    await add_installation(db)
    settings = make_settings(database_url=db.url)
    with serving(create_app(settings)) as url:
        async with DroppingProxy(urlparse(url).port) as proxy:
            yield {"url": proxy.url, "proxy": proxy, "db": db, "redis": queue, "settings": settings}


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Where screenshots go: $CLARITY_TEST_ARTEFACTS when set, else the test's tmp dir."""
    folder = Path(os.environ.get(ARTEFACTS_VARIABLE) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def page(site):
    """A Chromium page (the site outlives it: its streams close before the server stops)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        page.problems = []  # script errors and refused content (CSP)
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and "Content Security Policy" in m.text
                and page.problems.append(m.text)
            ),
        )
        yield page
        await context.close()
        await browser.close()


async def screenshot(page, artefacts: Path, name: str) -> None:
    path = artefacts / f"build-page-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def page_url(site, build_id: int) -> str:
    link = capability(build_id, site["settings"].link_key())
    return f"{site['url']}/builds/{build_id}?cap={link}"


def dag_node(page, key: str):
    return page.locator(f'#dag g.node[data-key="{key}"]')


async def logged_seqs(page) -> list[int]:
    return [
        int(s)
        for s in await page.locator("#event-log li").evaluate_all(
            "items => items.map(item => item.dataset.seq)"
        )
    ]


@chromium_only
async def test_the_page_draws_the_dag_and_the_masked_findings(site, page, artefacts):
    from playwright.async_api import expect

    build = await scanned_build(site)
    await page.goto(page_url(site, build.id))
    assert await page.locator("#dag g.node").count() == len(PR_SCAN_DAG.nodes)
    assert await page.locator("#dag path.edge").count() == sum(
        len(n.deps) for n in PR_SCAN_DAG.nodes
    )
    await expect(dag_node(page, "scan")).to_have_attribute("data-status", "succeeded")
    await expect(dag_node(page, "publish")).to_have_attribute("data-status", "pending")
    assert await dag_node(page, "verdict").get_attribute("data-depth") == "2"
    await expect(page.locator("#gauge")).to_have_attribute("data-score", "58")
    categories = page.locator("#categories g.category")
    assert await categories.evaluate_all("gs => gs.map(g => g.dataset.category)") == [
        "security",
        "reliability",
        "scalability",
    ]
    security = page.locator('details.group[data-category="security"] article.finding')
    await expect(security).to_have_count(2)
    await expect(security.first.locator("pre.evidence")).to_contain_text("sk_l…")
    await expect(page.locator('details.group[data-category="reliability"]')).to_contain_text(
        "API has no health endpoint"
    )
    html = await page.content()
    assert SECRET not in html
    assert "<img src=x" not in html and "&lt;img src=x onerror" in html
    await expect(page.locator("#event-log li")).to_have_count(6)  # queued, started, 2 × 2 nodes
    await screenshot(page, artefacts, "scanned")
    assert page.problems == []


@chromium_only
async def test_a_node_changes_colour_live_as_the_build_moves(site, page, artefacts):
    from playwright.async_api import expect

    build = await scanned_build(site)
    await page.goto(page_url(site, build.id))
    await expect(page.locator("#build")).to_have_attribute("data-stream", "live")
    compare = dag_node(page, "compare")
    await expect(compare).to_have_attribute("data-status", "pending")

    await move(site, build.id, node("compare", TaskStatus.RUNNING, EventType.NODE_STARTED))
    await expect(compare).to_have_attribute("data-status", "running")
    await expect(compare.locator("rect")).to_have_attribute(
        "fill", STATUS_COLOURS[TaskStatus.RUNNING]
    )
    await screenshot(page, artefacts, "running")

    await move(site, build.id, node("compare", TaskStatus.SUCCEEDED, EventType.NODE_SUCCEEDED))
    await expect(compare).to_have_attribute("data-status", "succeeded")
    await expect(compare.locator("rect")).to_have_attribute(
        "fill", STATUS_COLOURS[TaskStatus.SUCCEEDED]
    )
    await expect(page.locator("#event-log li").last).to_have_attribute(
        "data-type", "NODE_SUCCEEDED"
    )
    assert await logged_seqs(page) == list(range(1, 9))
    assert page.problems == []


@chromium_only
async def test_a_dropped_stream_resumes_after_the_last_event_without_gaps_or_repeats(
    site, page, artefacts
):
    from playwright.async_api import expect

    build = await scanned_build(site)
    proxy = site["proxy"]
    await page.goto(page_url(site, build.id))
    root = page.locator("#build")
    await expect(root).to_have_attribute("data-stream", "live")
    await move(site, build.id, node("compare", TaskStatus.RUNNING, EventType.NODE_STARTED))
    await expect(page.locator("#event-log li")).to_have_count(7)

    proxy.drop()  # the stream is cut; its reconnection waits until the events below exist
    await expect(root).to_have_attribute("data-stream", "reconnecting")
    await move(
        site,
        build.id,
        node("compare", TaskStatus.SUCCEEDED, EventType.NODE_SUCCEEDED),
        node("verdict", TaskStatus.RUNNING, EventType.NODE_STARTED),
        node("verdict", TaskStatus.SUCCEEDED, EventType.NODE_SUCCEEDED),
    )
    await screenshot(page, artefacts, "dropped")
    proxy.release()

    await expect(root).to_have_attribute("data-stream", "live", timeout=20_000)
    await expect(page.locator("#event-log li")).to_have_count(10, timeout=20_000)
    await expect(dag_node(page, "verdict")).to_have_attribute("data-status", "succeeded")
    assert await logged_seqs(page) == list(range(1, 11))
    await expect(root).to_have_attribute("data-duplicates", "0")
    # The browser resumed the stream itself, and the server went on after the event it named.
    resumed = [
        chunk
        for chunk in proxy.sent
        if chunk.startswith(f"GET /v1/builds/{build.id}/events".encode())
        and re.search(rb"(?im)^last-event-id: 7\r$", chunk)
    ]
    assert resumed

    await move(site, build.id, Change(EventType.BUILD_SUCCEEDED, build=BuildStatus.SUCCEEDED))
    await expect(root).to_have_attribute("data-stream", "finished")
    await expect(page.locator("#build-status")).to_have_attribute("data-status", "succeeded")
    assert await logged_seqs(page) == list(range(1, 12))
    await screenshot(page, artefacts, "resumed")
    assert page.problems == []


@chromium_only
async def test_fix_attempts_and_agent_runs_show_their_evidence_masked(site, page, artefacts):
    from playwright.async_api import expect

    build = await scanned_build(site)
    await add_fix_attempt_and_agent_run(site["db"], build)
    await page.goto(page_url(site, build.id))
    attempt = page.locator('#fixes article.fix-attempt[data-outcome="refused"]')
    await expect(attempt.locator("details.try")).to_have_count(2)
    await expect(attempt.locator("summary .gate.refused")).to_have_text("tests refused")
    run = page.locator('#trajectories details.run[data-role="security"]')
    await expect(run.locator(":scope > summary")).to_contain_text("1 tool call")
    await run.locator(":scope > summary").click()
    await run.locator("details summary", has_text="output").click()
    await expect(run.locator("pre").last).to_contain_text("STRIPE=sk_l…")
    await attempt.locator("details.try summary").first.click()
    await expect(attempt.locator(".gate-evidence pre").last).to_contain_text("test_search")
    assert SECRET not in await page.content()
    await expect(page.locator("#costs")).to_contain_text("security")
    await screenshot(page, artefacts, "fixes-and-runs")
    assert page.problems == []


async def get(site, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=site["url"]) as client:
        return await client.get(path, **kwargs)


async def test_the_page_takes_the_apis_credentials_and_writes_no_other_into_it(site):
    build = await scanned_build(site)
    other = await scanned_build(site)
    link = capability(build.id, site["settings"].link_key())
    assert (await get(site, f"/builds/{build.id}")).status_code == 401
    assert (await get(site, f"/builds/{other.id}", params={"cap": link})).status_code == 403
    assert (await get(site, f"/builds/{build.id}", params={"cap": "forged"})).status_code == 401

    by_link = await get(site, f"/builds/{build.id}", params={"cap": link})
    assert by_link.status_code == 200
    assert by_link.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in by_link.headers["content-security-policy"]
    assert by_link.text.count(link) == 2  # the stream's and the sections' addresses

    token = await create_token(site["db"], "ops", [Scope.READ])
    by_token = await get(site, f"/builds/{build.id}", headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 200
    assert token not in by_token.text and link not in by_token.text
    [events_url] = re.findall(r'data-events-url="([^"]+)"', by_token.text)
    minted = parse_qs(urlparse(events_url.replace("&amp;", "&")).query)["cap"][0]
    assert capability_grant(minted, site["settings"].link_key()).build_id == build.id


async def test_the_check_run_links_to_the_build_page():
    class Settings:
        public_url = "https://clarity.example/"

        def link_key(self) -> bytes:
            return b"k" * 32

    url = build_url(Settings(), 42)
    assert url.startswith("https://clarity.example/builds/42?cap=")
    assert capability_grant(url.split("cap=")[1], b"k" * 32).build_id == 42


def test_nodes_are_laid_out_by_dependency_depth():
    tasks = [
        Task(build_id=1, key=n.key, deps=list(n.deps), status=TaskStatus.PENDING)
        for n in PR_SCAN_DAG.nodes
    ]
    assert depths({t.key: t.deps for t in tasks}) == {
        "check_run": 0,
        "scan": 0,
        "compare": 1,
        "verdict": 2,
        "publish": 3,
        "close_fixes": 4,
    }
    picture = layout(tasks, datetime.now(UTC))
    placed = {n.key: n for n in picture.nodes}
    assert placed["check_run"].x == placed["scan"].x < placed["compare"].x
    assert placed["check_run"].y < placed["scan"].y
    assert {(e.source, e.target) for e in picture.edges} == {
        (d, n.key) for n in PR_SCAN_DAG.nodes for d in n.deps
    }
    assert all(n.x + picture.node_width <= picture.width for n in picture.nodes)


def test_a_cycle_or_an_unknown_dependency_does_not_stop_the_drawing():
    assert depths({"a": ["b"], "b": ["a", "ghost"]}) in ({"a": 1, "b": 0}, {"a": 0, "b": 1})


def test_findings_are_grouped_by_category_worst_first_each_masked():
    groups = group_findings(REPORT, score_of(REPORT))
    assert [group.category for group in groups] == ["security", "reliability"]
    assert [f.severity.value for f in groups[0].findings] == ["critical", "high"]
    assert groups[0].findings[0].evidence == 'STRIPE_KEY = "sk_l…"'


def test_a_category_shows_its_worst_findings_and_counts_the_rest():
    finding = REPORT["findings"][2]
    many = [{**finding, "fingerprint": f"{n:032x}"} for n in range(GROUP_LIMIT + 3)]
    [group] = group_findings({"findings": many}, None)
    assert (len(group.findings), group.more, group.score) == (GROUP_LIMIT, 3, None)

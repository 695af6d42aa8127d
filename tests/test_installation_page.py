"""The installation page: recent builds, quota usage and fix outcomes, for operator tokens only."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from bot.app import create_app
from bot.auth import Scope, capability, create_token
from bot.models import FixAttempt, FixOutcome
from bot.usage import reserve
from localhub import serving
from policies.pack import load_pack
from tests.build_pages import add_installation, scanned_build


@pytest.fixture
async def site(db, queue, make_settings):
    await add_installation(db)
    settings = make_settings(database_url=db.url)
    with serving(create_app(settings)) as url:
        yield {"url": url, "db": db, "redis": queue, "settings": settings}


async def get(site, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=site["url"]) as client:
        return await client.get(path, **kwargs)


async def test_the_installation_page_shows_builds_quota_and_fix_outcomes(site):
    build = await scanned_build(site)
    now = datetime.now(UTC)
    await reserve(
        site["db"],
        load_pack("default"),
        "deep_scans",
        installation_id=1,
        user="alice",
        pull_request="octo-org/app#7",
        now=now,
    )
    async with site["db"].session() as session:
        for number, outcome in enumerate((FixOutcome.MERGED, FixOutcome.REFUSED)):
            session.add(
                FixAttempt(
                    installation_id=1,
                    repository_id=10,
                    pr_number=number,
                    fingerprint="f2" * 16,
                    rule_id="py-sql-injection",
                    outcome=outcome,
                )
            )
        await session.commit()
    reader = await create_token(site["db"], "ops", [Scope.READ])
    response = await get(site, "/installations/1", headers={"Authorization": f"Bearer {reader}"})
    assert response.status_code == 200
    html = response.text
    assert f'<tr data-build="{build.id}">' in html and "octo-org/app" in html
    assert re.search(
        r'data-kind="deep scans">\s*<th>deep scans</th>\s*<td class="used">1</td>', html
    )
    assert re.search(r'data-rule="py-sql-injection">.*?<td class="rate">50%</td>', html, re.S)
    assert reader not in html and "cap=" not in html
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_installation_page_needs_an_operator_token_with_read(site):
    build = await scanned_build(site)
    link = capability(build.id, site["settings"].link_key())
    controller = await create_token(site["db"], "ctl", [Scope.CONTROL])
    reader = await create_token(site["db"], "ops", [Scope.READ])
    assert (await get(site, "/installations/1")).status_code == 401
    # A build's link reads that build, not its installation.
    assert (await get(site, "/installations/1", params={"cap": link})).status_code == 403
    as_controller = {"Authorization": f"Bearer {controller}"}
    assert (await get(site, "/installations/1", headers=as_controller)).status_code == 403
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert (await get(site, "/installations/2", headers=as_reader)).status_code == 404

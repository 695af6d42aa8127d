"""The documentation says what the code does: `.clarity.yml` examples are valid files, every
slash command is documented, and the README's links lead somewhere."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap

import jsonschema
import pytest
import yaml

from handlers.commands import CommandName
from localhub import Hub, running
from policies import effective_pack, load_pack, load_repo_config
from scanner.rules import catalogue
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
CLARITY_YML = (DOCS / "clarity-yml.md").read_text()
EXAMPLES = re.findall(r"^```yaml\n(.*?)^```", CLARITY_YML, flags=re.MULTILINE | re.DOTALL)


def test_the_reference_has_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_matches_the_json_schema(example):
    schema = json.loads((DOCS / "clarity-yml.schema.json").read_text())
    # As an editor's YAML 1.2 language server sees it: dates are strings there.
    data = json.loads(json.dumps(yaml.safe_load(example), default=str))
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_example_loads_and_only_tightens_the_default_pack(example):
    config = load_repo_config(example, known_rules=set(catalogue()))
    effective_pack(load_pack("default"), config)  # raises RepoConfigError on a loosening


@pytest.mark.parametrize("name", list(CommandName))
def test_every_slash_command_is_documented(name):
    assert f"/clarity {name.value}" in (DOCS / "commands.md").read_text()


@pytest.mark.parametrize(
    "target", re.findall(r"\]\((docs/[^)#]+)", (REPO_ROOT / "README.md").read_text())
)
def test_the_readmes_links_to_docs_exist(target):
    assert (REPO_ROOT / target).is_file()


def test_the_docs_this_readme_promises_are_linked():
    readme = (REPO_ROOT / "README.md").read_text()
    for name in ("operations", "installing", "commands", "tiers", "sarif", "clarity-yml"):
        assert f"(docs/{name}.md)" in readme


def test_the_runbooks_redelivery_script_redelivers_failed_deliveries(tmp_path):
    operations = (DOCS / "operations.md").read_text()
    (script,) = [
        textwrap.dedent(block)
        for block in re.findall(r"```python\n(.*?)^\s*```", operations, re.MULTILINE | re.DOTALL)
        if "/app/hook/deliveries" in block
    ]
    (tmp_path / "redeliver.py").write_text(script)
    # a delivery GitHub could not make: nothing listens on the discard port
    hub = Hub(webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="hook-secret")
    hub.add_installation("octo-org")
    hub.add_repository("octo-org", "app", {"app.py": "print('hi')\n"})
    hub.commit_files("octo-org/app", "feature", {"app.py": "print('bye')\n"})
    hub.open_pull_request("octo-org/app", "feature")
    with running(hub) as github:
        failed = asyncio.run(hub.deliver(hub.pull_request_event("octo-org/app", 1)))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CLARITY_")}
        environment.update(
            CLARITY_APP_ID=str(hub.app.id),
            CLARITY_PRIVATE_KEY=hub.private_key_pem.decode(),
            CLARITY_WEBHOOK_SECRETS="hook-secret",
            CLARITY_GITHUB_API_URL=github,
        )
        ran = subprocess.run(
            [sys.executable, str(tmp_path / "redeliver.py")],
            env=environment,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr
        # the stand-in, like GitHub, redelivers after answering
        hub.wait_for(lambda: len(hub.deliveries) == 2, timeout=10)
    assert f"redelivered {failed.guid} pull_request" in ran.stdout
    assert [(d.guid, d.redelivery) for d in hub.deliveries] == [
        (failed.guid, False),
        (failed.guid, True),
    ]

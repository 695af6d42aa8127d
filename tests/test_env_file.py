"""The env file `clarity setup` writes: other lines kept, values read back as written by
python-dotenv (and so by docker compose and a shell), refused when they cannot be."""

from __future__ import annotations

import stat

import pytest
from dotenv import dotenv_values

from bot.env_file import EnvFileError, env_names, merge_env, write_private


def test_merge_keeps_other_lines_replaces_ours_and_drops_an_inline_key():
    old = "# ours\nREDIS_URL=redis://cache:6379/0\nexport CLARITY_APP_ID=1\nCLARITY_PRIVATE_KEY=x\n"
    merged = merge_env(
        old, {"CLARITY_APP_ID": "2", "CLARITY_CLIENT_ID": "Iv1.x"}, ("CLARITY_PRIVATE_KEY",)
    )
    assert merged == (
        "# ours\nREDIS_URL=redis://cache:6379/0\nCLARITY_APP_ID=2\nCLARITY_CLIENT_ID=Iv1.x\n"
    )


@pytest.mark.parametrize("value", ["plain-value_1.2", "/path with spaces/key.pem", "a$b#c d"])
def test_values_read_back_as_written(tmp_path, value):
    env_file = tmp_path / ".env"
    env_file.write_text(merge_env("", {"NAME": value}))
    assert dotenv_values(env_file) == {"NAME": value}


def test_a_value_that_cannot_be_quoted_is_refused():
    with pytest.raises(EnvFileError):
        merge_env("", {"NAME": "it's"})


def test_names_are_read_past_comments_and_exports():
    assert env_names("# CLARITY_APP_ID=1\nexport A=1\n B = 2\nnot a line\n") == {"A", "B"}


def test_a_private_file_is_replaced_whole_with_mode_0600(tmp_path):
    path = tmp_path / "deep" / "key.pem"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["key.pem"]

"""``connector users add`` and ``connector users link``: a user signs in with the link printed."""
from __future__ import annotations

import re

import pytest

from connector.web import create_app
from tests.conftest import SHOPIFY_SHOP
from tests.web import PASSWORD, csrf_token, sign_in


def test_a_user_added_from_the_cli_signs_in_with_a_password_or_the_printed_link(cli, container):
    added = cli("users", "add", "Maker@Candles.example", "--shop", SHOPIFY_SHOP, "--password-stdin",
                input=PASSWORD + "\n")
    assert added.exit_code == 0 and added.output == f"user maker@candles.example added for shop {SHOPIFY_SHOP}\n"
    client = create_app(container, start_worker=False).test_client()
    assert sign_in(client, "maker@candles.example").status_code == 302

    linked = cli("users", "link", "maker@candles.example", "--base-url", "https://connector.example/")
    assert linked.exit_code == 0
    url = re.fullmatch(r"https://connector\.example(/login/link/[A-Za-z0-9._-]+)\n", linked.stdout)
    assert url, linked.stdout
    fresh = client.application.test_client()
    response = fresh.post(url.group(1), data={"csrf_token": csrf_token(fresh, url.group(1))})
    assert response.status_code == 302 and fresh.get("/settings/").status_code == 200


def test_users_add_asks_for_the_password_twice(cli, container):
    result = cli("users", "add", "grower@botanics.example", "--shop", SHOPIFY_SHOP, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


@pytest.mark.parametrize("args, stdin, message", [
    (("not-an-email", "--shop", SHOPIFY_SHOP), PASSWORD, "'not-an-email' is not an email address"),
    (("a@b.example", "--shop", "nope"), PASSWORD, "unknown shop 'nope'"),
    (("a@b.example", "--shop", SHOPIFY_SHOP), "short", "the password must have 12 to 1024 characters"),
])
def test_users_add_refuses_bad_input_in_one_line(cli, args, stdin, message):
    result = cli("users", "add", *args, "--password-stdin", input=stdin + "\n")
    assert result.exit_code == 2 and result.stderr == message + "\n"


def test_a_second_user_with_the_same_email_is_refused(cli):
    cli("users", "add", "a@b.example", "--shop", SHOPIFY_SHOP, "--password-stdin", input=PASSWORD + "\n")
    again = cli("users", "add", "A@B.example", "--shop", SHOPIFY_SHOP, "--password-stdin", input=PASSWORD + "\n")
    assert again.exit_code == 2 and again.stderr == "a user a@b.example exists already\n"


def test_users_link_for_an_unknown_user_or_without_a_key_says_so(cli, runner, tmp_path, config_dict):
    result = cli("users", "link", "ghost@nowhere.example")
    assert result.exit_code == 2 and result.stderr == "no user ghost@nowhere.example\n"
    from connector.cli import main
    from tests.conftest import to_toml

    config_dict["web"].pop("secret_key")
    path = tmp_path / "nokey.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    result = runner.invoke(main, ["--config", str(path), "users", "link", "a@b.example"])
    assert result.exit_code == 2
    assert result.stderr == "no web secret key: set [web] secret_key or CONNECTOR_WEB_SECRET_KEY\n"

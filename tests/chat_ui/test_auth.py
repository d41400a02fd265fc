"""Logins for the app on the network: users files, environment, roles."""

from __future__ import annotations

import pytest

from chat_ui._auth import AuthError, hash_password, load_users


def test_a_users_file_line_checks_its_password_and_role(tmp_path):
    path = tmp_path / "users"
    path.write_text(
        "# support team\n\n"
        f"ana:analyst:{hash_password('ana-password', iterations=1000)}\n"
        f"bo:agent:{hash_password('bo-password', iterations=1000)}\n"
    )

    users = load_users(path)

    assert users.check("ana", "ana-password") and not users.check("ana", "bo-password")
    assert not users.check("nobody", "ana-password")
    assert users.sees_names("bo") and not users.sees_names("ana")
    assert not users.sees_names(None)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("ana:analyst", "users:1: expected username:role:hash"),
        ("ana:boss:pbkdf2_sha256$1000$aa$bb", "users:1: role 'boss' is not one of"),
        ("ana:agent:plaintext", "users:1: the hash must look like"),
    ],
)
def test_a_bad_users_file_line_is_named_with_what_to_do(tmp_path, line, said):
    path = tmp_path / "users"
    path.write_text(line + "\n")

    with pytest.raises(AuthError, match=said.replace("$", r"\$")):
        load_users(path)


def test_a_missing_users_file_is_named(tmp_path):
    with pytest.raises(AuthError, match="cannot read the users file"):
        load_users(tmp_path / "absent")


def test_one_user_from_the_environment(monkeypatch):
    monkeypatch.setenv("SPARKIFY_APP_USERNAME", "desk")
    monkeypatch.setenv("SPARKIFY_APP_PASSWORD", "desk-password")

    users = load_users()

    assert users.check("desk", "desk-password") and users.sees_names("desk")


def test_a_username_without_a_password_is_refused(monkeypatch):
    monkeypatch.setenv("SPARKIFY_APP_USERNAME", "desk")
    monkeypatch.delenv("SPARKIFY_APP_PASSWORD", raising=False)

    with pytest.raises(AuthError, match="SPARKIFY_APP_PASSWORD is not set"):
        load_users()


def test_no_users_anywhere_means_none(monkeypatch):
    for name in ("SPARKIFY_APP_USERNAME", "SPARKIFY_APP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SPARKIFY_APP_USERS_FILE", raising=False)

    assert load_users() is None

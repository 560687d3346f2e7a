import pytest

from settings import ConfigError, check, from_environment


def test_the_app_refuses_to_start_without_a_webhook_secret_and_names_it():
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        check(from_environment({"APP_ID": "12"}))


def test_with_no_app_at_all_it_starts_to_offer_registration():
    settings = from_environment({})
    check(settings)
    assert settings.needs_registration


def test_private_key_with_escaped_newlines_is_accepted(app_key):
    one_line = app_key[0].strip().replace("\n", "\\n")
    settings = from_environment({"WEBHOOK_SECRET": "s", "APP_ID": "12", "PRIVATE_KEY": one_line})
    check(settings)
    assert settings.private_key == app_key[0]


def test_private_key_path_is_read(tmp_path, app_key):
    pem = tmp_path / "app.pem"
    pem.write_text(app_key[0])
    settings = from_environment({"WEBHOOK_SECRET": "s", "APP_ID": "12", "PRIVATE_KEY_PATH": str(pem)})
    assert settings.private_key == app_key[0]


@pytest.mark.parametrize(
    "env, problem",
    [
        pytest.param({"APP_ID": "12", "PRIVATE_KEY": "not a key"}, "PRIVATE_KEY is not a valid PEM", id="garbage key"),
        pytest.param({"APP_ID": "my-app"}, "APP_ID must be a number", id="app id is a name"),
        pytest.param(
            {"PRIVATE_KEY_PATH": "/nonexistent/app.pem"},
            "PRIVATE_KEY_PATH=/nonexistent/app.pem cannot be read",
            id="missing key file",
        ),
        pytest.param({"WEBHOOK_PATH": "hooks"}, "WEBHOOK_PATH must start with '/'", id="relative webhook path"),
        pytest.param(
            {"ADMIN_TOKEN": "a"},
            "ADMIN_TOKEN is too short: it must have at least 32 characters, not 1;",
            id="one-letter admin token",
        ),
        pytest.param({"ADMIN_TOKEN": "x" * 31}, "ADMIN_TOKEN is too short", id="admin token one short"),
        pytest.param(
            {"BACKFILL_CALLS_PER_HOUR": "1k"},
            r"BACKFILL_CALLS_PER_HOUR must be a whole number of GitHub requests an hour \(0: off\), got '1k'",
            id="history requests not a number",
        ),
        *(
            pytest.param(
                {"WORKER_THREADS": raw},
                rf"WORKER_THREADS must be how many deliveries a worker processes at once \(1-32\), got '{raw}'",
                id=f"worker threads {raw}",
            )
            for raw in ("0", "33", "abc", "-1", "2.5")
        ),
    ],
)
def test_broken_settings_name_the_fix(env, problem):
    with pytest.raises(ConfigError, match=problem):
        check(from_environment({"WEBHOOK_SECRET": "s", **env}))


def test_key_without_app_id_names_app_id(app_key):
    with pytest.raises(ConfigError, match="APP_ID"):
        check(from_environment({"WEBHOOK_SECRET": "s", "PRIVATE_KEY": app_key[0]}))


@pytest.mark.parametrize(
    "env, url",
    [
        pytest.param({}, "https://api.github.com", id="github.com by default"),
        pytest.param({"GITHUB_API_URL": "http://127.0.0.1:9/"}, "http://127.0.0.1:9", id="explicit API URL"),
        pytest.param({"GHE_HOST": "ghe.example.org"}, "https://ghe.example.org/api/v3", id="Probot's GHE_HOST"),
    ],
)
def test_github_api_url(env, url):
    assert from_environment(env).github_api_url == url


def test_defaults_are_the_embedded_ones(tmp_path):
    settings = from_environment({}, instance_path=str(tmp_path))
    assert settings.database_url == f"sqlite:///{tmp_path / 'engage.sqlite3'}"
    assert settings.redis_url is None and settings.webhook_path == "/api/github/webhooks"


def test_heroku_style_postgres_urls_use_psycopg3():
    assert from_environment({"DATABASE_URL": "postgres://u@h/db"}).database_url == "postgresql+psycopg://u@h/db"


def test_a_short_admin_token_stops_the_app_at_start_up_and_a_long_one_starts_it(make_app):
    with pytest.raises(ConfigError, match=r"ADMIN_TOKEN is too short.*token_urlsafe"):
        make_app(admin_token="a")
    assert make_app(admin_token="x" * 32).extensions["engage"].settings.admin_token == "x" * 32


def test_worker_threads_default_to_four_and_take_whole_numbers_up_to_32():
    assert from_environment({}).worker_threads == 4
    assert [from_environment({"WORKER_THREADS": raw}).worker_threads for raw in ("1", " 8 ", "32")] == [1, 8, 32]

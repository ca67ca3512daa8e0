from pathlib import Path

import pytest

from quilt_verify.config import ConfigError, Secret, new_run_id, resolve


def write_env(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_flag_beats_environment_beats_dotenv(tmp_path):
    env_file = write_env(tmp_path, QUILT_BASE_URL="http://dotenv:1", QUILT_API_KEY="dotenv-key")
    environ = {"QUILT_BASE_URL": "http://environ:2", "QUILT_API_KEY": "environ-key"}

    cfg = resolve(url="http://flag:3", environ=environ, dotenv_path=env_file)
    assert cfg.base_url == "http://flag:3"
    assert cfg.api_key.reveal() == "environ-key"
    assert cfg.sources == {"base_url": "flag", "api_key": "environment"}

    cfg = resolve(environ={}, dotenv_path=env_file)
    assert (cfg.base_url, cfg.api_key.reveal()) == ("http://dotenv:1", "dotenv-key")
    assert cfg.sources == {"base_url": ".env", "api_key": ".env"}


def test_empty_values_count_as_unset(tmp_path):
    env_file = write_env(tmp_path, QUILT_API_KEY="from-dotenv")
    cfg = resolve(api_key="", environ={"QUILT_API_KEY": ""}, dotenv_path=env_file)
    assert cfg.api_key.reveal() == "from-dotenv"


def test_dotenv_is_not_loaded_into_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("QUILT_JWT", raising=False)
    env_file = write_env(tmp_path, QUILT_JWT="jwt-from-file")
    cfg = resolve(environ={}, dotenv_path=env_file)
    assert cfg.jwt.reveal() == "jwt-from-file"
    import os

    assert "QUILT_JWT" not in os.environ


def test_jwt_wins_over_api_key():
    cfg = resolve(api_key="k" * 20, jwt="j" * 20, environ={}, dotenv_path=None)
    assert cfg.auth_method == "bearer-jwt"
    assert cfg.tenant_secret().reveal() == "j" * 20
    assert resolve(api_key="k" * 20, environ={}, dotenv_path=None).auth_method == "x-api-key"


def test_no_target_means_reference_backend():
    cfg = resolve(environ={}, dotenv_path=None)
    assert cfg.base_url is None and cfg.api_key is None


@pytest.mark.parametrize("url", ["backend.quilt.sh", "ftp://x", "http://", "http://h/?a=1"])
def test_bad_url_is_one_clear_error(url):
    with pytest.raises(ConfigError, match="target URL"):
        resolve(url=url, api_key="key-0123456789", environ={}, dotenv_path=None)


def test_target_without_credential_is_an_error():
    with pytest.raises(ConfigError, match="no credential"):
        resolve(url="https://backend.quilt.sh", environ={}, dotenv_path=None)


def test_trailing_slash_is_dropped():
    cfg = resolve(url="https://backend.quilt.sh/", api_key="key-0123456789", environ={},
                  dotenv_path=None)
    assert cfg.base_url == "https://backend.quilt.sh"


def test_secret_never_shows_its_value():
    secret = Secret("quilt_sk_super-secret-value")
    cfg = resolve(api_key="quilt_sk_super-secret-value", environ={}, dotenv_path=None)
    for text in (repr(secret), str(secret), repr(cfg), str(cfg), f"{cfg}"):
        assert "supersecret" not in text
    assert secret == Secret("quilt_sk_super-secret-value")


def test_run_ids_are_unique_lower_case_and_name_safe():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    for run_id in ids:
        assert run_id == run_id.lower() and all(c.isalnum() or c == "-" for c in run_id)


def test_too_short_credentials_are_refused():
    with pytest.raises(ConfigError, match="API key is 4 characters long"):
        resolve(url="http://h", api_key="test", environ={}, dotenv_path=None)
    with pytest.raises(ConfigError, match="JWT is 3 characters"):
        resolve(jwt="abc", environ={}, dotenv_path=None)

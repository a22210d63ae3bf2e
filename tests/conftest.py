import pytest
from django.test import Client
from rest_framework.test import APIClient

from config.localcache import config_cache
from partnerships import auth, ratelimit
from tests import servers
from tests.factories import ApiKeyFactory, TriggerFactory
from tests.second_factor import verify_session
from triggers.services import ingest


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _local_webhook_receivers(settings):
    """Test receivers run on this machine; the production refusal has its own test."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Each test starts with cold per-process caches, as a new process would."""
    config_cache._entries.clear()
    auth._last_touched.clear()
    ratelimit._leases.clear()
    ingest._user_ids.clear()
    yield
    config_cache._entries.clear()


@pytest.fixture(autouse=True)
def _force_login_gives_the_second_factor(monkeypatch):
    """``client.force_login(user)`` (and pytest-django's ``admin_client``) signs in a verified
    operator: password and second factor, the session verified by django-otp with a device of
    the user's. ``client.login(username=..., password=...)`` stays the password step alone, as
    on the sign-in page: the second factor's own tests sign in that way."""
    force_login = Client.force_login

    def force_login_verified(self, user, backend=None):
        force_login(self, user, backend)
        verify_session(self, user)

    monkeypatch.setattr(Client, "force_login", force_login_verified)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_key(db):
    return ApiKeyFactory()


@pytest.fixture
def partnership(api_key):
    return api_key.partnership


@pytest.fixture
def partner_client(api_key) -> APIClient:
    """A client that sends the partnership's live key on every request."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key.plaintext)
    return client


@pytest.fixture
def trigger(partnership):
    return TriggerFactory(partnership=partnership)


@pytest.fixture
def test_key(partnership):
    """A test-mode key of the same partnership as ``api_key``."""
    return ApiKeyFactory(partnership=partnership, mode="test")


@pytest.fixture
def test_client(test_key) -> APIClient:
    """A client that sends the partnership's test key on every request."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=test_key.plaintext)
    return client


@pytest.fixture
def pilot_viewer(client, django_user_model, partnership):
    """A Pilot user (staff) who may view everything and change nothing, a member of the test's
    partnership (Pilot shows an operator only their partnerships' rows)."""
    from django.contrib.auth.models import Permission

    from partnerships.models import PartnershipMember

    user = django_user_model.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    PartnershipMember.objects.create(user=user, partnership=partnership)
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def private_postgres(tmp_path_factory):
    """A migrated PostgreSQL server this run owns: tests may restart it (see tests/servers.py)."""
    with servers.private_postgres(tmp_path_factory.mktemp("private-postgres")) as postgres:
        yield postgres


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory):
    """The URL of a Redis server this run owns (a broker no other test's messages reach)."""
    with servers.private_redis(tmp_path_factory.mktemp("private-redis")) as url:
        yield url

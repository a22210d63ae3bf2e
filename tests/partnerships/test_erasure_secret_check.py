"""Production must set USER_ERASURE_SECRET: with SECRET_KEY keying erased ids, rotating
SECRET_KEY would reopen every one of them."""

from partnerships.checks import ERASURE_SECRET_MISSING, user_erasure_secret_check


def test_production_without_the_erasure_secret_is_an_error(settings):
    settings.DEBUG, settings.SECRET_KEY = False, "a-production-secret-key-" + "x" * 30
    settings.USER_ERASURE_SECRET = ""

    assert user_erasure_secret_check(None) == [ERASURE_SECRET_MISSING]

    settings.USER_ERASURE_SECRET = "kept-forever-" + "y" * 30
    assert user_erasure_secret_check(None) == []


def test_debug_or_the_development_key_may_leave_it_unset(settings):
    settings.USER_ERASURE_SECRET = ""
    settings.DEBUG, settings.SECRET_KEY = True, "a-production-secret-key-" + "x" * 30
    assert user_erasure_secret_check(None) == []

    settings.DEBUG, settings.SECRET_KEY = False, settings.DEVELOPMENT_SECRET_KEY
    assert user_erasure_secret_check(None) == []

"""TOTP enrolment and checking through the service, on a real SQLite store: a code and a
recovery code work once each, odd input is refused cleanly, enrolment needs a right code."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from publisher import config
from publisher.app import open_app
from publisher.errors import OperatorError
from publisher.services import operators, twofactor
from publisher.services.audit import Actor
from tests.conftest import write_config

ME = Actor("ada@example.org", "192.0.2.1")


def test_enrol_then_codes_work_once(tmp_path: Path) -> None:
    app = open_app(config.load(write_config(tmp_path)))
    operators.add_operator(app, "ada@example.org", "admin", "correct horse battery", actor=ME)
    ada = operators.get_operator(app, "ada@example.org")
    secret = twofactor.new_secret()
    totp = pyotp.TOTP(secret)
    now = app.clock().timestamp()
    with pytest.raises(OperatorError, match="not right"):
        twofactor.enrol(app, ada, secret, "12345", actor=ME)
    codes = twofactor.enrol(app, ada, secret, totp.at(now), actor=ME)
    assert len(set(codes)) == twofactor.RECOVERY_CODES
    ada = operators.get_operator(app, "ada@example.org")
    assert ada.two_factor and twofactor.recovery_codes_left(ada) == 10
    with pytest.raises(OperatorError, match="already has"):
        twofactor.enrol(app, ada, secret, totp.at(now), actor=ME)

    assert not twofactor.verify(app, ada, totp.at(now), actor=ME)  # used at enrolment
    assert twofactor.verify(app, ada, totp.at(now + 30), actor=ME)
    assert not twofactor.verify(app, ada, totp.at(now + 30), actor=ME)
    assert not twofactor.verify(app, ada, totp.at(now + 90), actor=ME)  # too far ahead
    for odd in ("", "١٢٣٤٥٦", "ünïcödé-code", "x" * 5000, "12 34 56"):
        assert not twofactor.verify(app, ada, odd, actor=ME)

    assert twofactor.verify(app, ada, codes[3].lower(), actor=ME)
    ada = operators.get_operator(app, "ada@example.org")
    assert twofactor.recovery_codes_left(ada) == 9
    assert not twofactor.verify(app, ada, codes[3], actor=ME)
    assert "<svg" in twofactor.qr_svg(twofactor.provisioning_uri(app, ada.email, secret))

    assert operators.reset_2fa(app, "ada@example.org", actor=ME)
    ada = operators.get_operator(app, "ada@example.org")
    assert not ada.two_factor and not twofactor.verify(app, ada, codes[4], actor=ME)
    actions = [e.action for e in app.store.audit_entries(10)]
    assert actions[:3] == ["operator.reset_2fa", "operator.recovery_code", "operator.2fa_enrol"]
    app.store.close()

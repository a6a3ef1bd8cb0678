"""TOTP codes (RFC 6238) are matched within the allowed window and to their time step."""

from __future__ import annotations

import pyotp

from driftline_ingestion.identity import _backup_code, _qr_png, totp_step

SECRET = pyotp.random_base32()
NOW = 1_800_000_000.0


def test_the_current_code_matches_its_step():
    code = pyotp.TOTP(SECRET).at(NOW)
    assert totp_step(SECRET, code, window=1, now=NOW) == int(NOW // 30)


def test_codes_one_step_away_are_accepted_and_further_ones_refused():
    totp = pyotp.TOTP(SECRET)
    assert totp_step(SECRET, totp.at(NOW - 30), window=1, now=NOW) == int(NOW // 30) - 1
    assert totp_step(SECRET, totp.at(NOW + 30), window=1, now=NOW) == int(NOW // 30) + 1
    assert totp_step(SECRET, totp.at(NOW - 90), window=1, now=NOW) is None
    assert totp_step(SECRET, totp.at(NOW - 30), window=0, now=NOW) is None


def test_a_wrong_code_is_refused():
    code = pyotp.TOTP(SECRET).at(NOW)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert totp_step(SECRET, wrong, window=1, now=NOW) is None


def test_backup_codes_are_distinct_and_readable():
    codes = {_backup_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 11 and c[5] == "-" for c in codes)


def test_the_enrolment_qr_code_is_a_png():
    png = _qr_png(pyotp.TOTP(SECRET).provisioning_uri(name="ana@acme", issuer_name="Driftline"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 200

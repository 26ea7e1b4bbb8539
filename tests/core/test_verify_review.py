"""The Wechatpay-Timestamp rule shared by responses and notifications (spec §B3, §B9)."""

from __future__ import annotations

import pytest

from wxpay_async import SignatureVerificationError, TimestampOutOfWindowError
from wxpay_async.crypto import SignedHeaders, check_timestamp

NOW = 1_700_000_000.0
HEADERS = {
    "Wechatpay-Nonce": "n",
    "Wechatpay-Signature": "c2ln",
    "Wechatpay-Serial": "PUB_KEY_ID_0114232134912410000000000000",
    "Request-ID": "RID-1",
}


def signed(timestamp: str) -> SignedHeaders:
    return SignedHeaders.from_headers(dict(HEADERS, **{"Wechatpay-Timestamp": timestamp}))


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 400,  # used to raise OverflowError (int too large to convert to float)
        "-" + "9" * 400,
        "+1700000000",
        "-1700000000",
        "1_700_000_000",
        "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # full-width digits
        "1700000000.5",
        "1234567890123",  # 13 digits
    ],
)
def test_anything_but_1_to_12_ascii_digits_is_a_signature_failure(timestamp: str) -> None:
    with pytest.raises(SignatureVerificationError) as info:
        check_timestamp(signed(timestamp), 300, lambda: NOW)
    assert type(info.value) is SignatureVerificationError  # not an out-of-window error
    assert info.value.request_id == "RID-1"
    with pytest.raises(SignatureVerificationError):
        SignedHeaders.checked(dict(HEADERS, **{"Wechatpay-Timestamp": timestamp}), 300)


def test_digits_within_the_rule_are_judged_by_the_window() -> None:
    check_timestamp(signed("1700000000"), 300, lambda: NOW)
    check_timestamp(signed(" 1700000100 "), 300, lambda: NOW)  # header whitespace is trimmed
    for timestamp in ("0", "1", "999999999999"):
        with pytest.raises(TimestampOutOfWindowError):
            check_timestamp(signed(timestamp), 300, lambda: NOW)

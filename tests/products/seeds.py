"""The seed documents' own request and response examples (``/work/shared/seeds``), as dicts.

Adjustments, each per spec.md Part D or the seed's own text:

* S4 (HK onboarding) prints ``contact`` already encrypted; the library encrypts, so the example
  carries plaintext contact values here.
* S1 (H5 create) ``notify_url`` was rewritten to ``http://www.tg885.com`` by the mirror (Part D
  #2); notify URLs must be https. The junk JSON after the example (Part D #1) is ignored.
* S2 (PayScore) prints ``notify_url`` ``http://www.qq.com``, while its notification section
  requires https; the https form is used.
"""

from __future__ import annotations

from typing import Any

HK_CREATE_REQUEST: dict[str, Any] = {
    "sp_appid": "wx82ec4jy334ner1",
    "sp_mchid": "2422128905",
    "name": "testname",
    "shortname": "shortname",
    "office_phone": "13680534111",
    "contact": {"email": "tom@example.com", "name": "Tom Chan", "phone": "+85261234567"},
    "business_category": 343,
    "merchant_country_code": "344",
    "merchant_type": "ENTERPRISE",
    "registration_certificate_number": "519723407213085723",
    "registration_certificate_date": "2022-06-03",
    "settlement_bank_number": "559304578245298347923856",
    "business": {"business_type": "ONLINE", "mcc": "5344", "mini_program": "flowerplus"},
    "director": {"name": "Tom", "number": "1234567890"},
}
HK_CREATE_RESPONSE: dict[str, Any] = {
    "sub_mchid": "1900000109",
    "verification_status": "Approved",
    "description": "This merchant takes effect only after being approved.",
}

H5_CREATE_REQUEST: dict[str, Any] = {
    "applyment_type": "APPLY_FOR_PAYMENT_AUTHORITY",
    "company_register_cert": "6uqyGjvHzOhsLleGFQVRF",
    "domains": ["qq.com"],
    "notify_url": "https://www.tg885.com/wxpay/pay.action",
    "sub_mchid": "2491935631",
    "transaction_limit_type": "UN_LAUNCHED_WEBSITE_LIMIT",
    "website_business_page_pics": ["6uqyGjvHzOhsLleGFQVRF"],
    "website_homepage_pics": ["6uqyGjvHzOhsLleGFQVRF"],
    "website_state": "HAS_LAUNCHED",
    "website_url": "https://qq.com",
}
H5_CREATE_RESPONSE: dict[str, Any] = {
    "applyment_id": 100000,
    "applyment_state": "PENDING",
    "applyment_type": "APPLY_FOR_PAYMENT_AUTHORITY",
    "audit_reject_detail": "The merchant's certificate does not meet requirements.",
    "business_description": "Founded in November 1998, Tencent is an Internet-based company.",
    "company_register_cert": "6uqyGjvHzOhsLleGFQVRF",
    "domains": ["qq.com"],
    "notify_url": "http://www.tg885.com/wxpay/pay.action",
    "sub_mchid": "2491935631",
    "transaction_limit_type": "UN_LAUNCHED_WEBSITE_LIMIT",
    "website_business_page_pics": ["6uqyGjvHzOhsLleGFQVRF"],
    "website_homepage_pics": ["6uqyGjvHzOhsLleGFQVRF"],
    "website_state": "HAS_LAUNCHED",
    "website_url": "https://qq.com",
}
H5_STATE_SUB_MCHID = "2491935631"

PAYSCORE_APPLY_REQUEST: dict[str, Any] = {
    "appid": "wxd678efh567hg6787",
    "authorization_code": "1234323JKHDFE1243252",
    "channel_id": "1230000109",
    "notify_url": "https://www.qq.com",
    "service_id": "service_id",
    "sub_appid": "wxd678efh567hg6787",
    "sub_mchid": "1230000109",
}
PAYSCORE_QUERY: dict[str, str] = {
    "service_id": "500001",
    "channel_id": "1230000109",
    "sub_mchid": "1230000109",
}
PAYSCORE_GET_RESPONSE: dict[str, Any] = {
    "appid": "wxd678efh567hg6787",
    "authorization_code": "1275342195190894594",
    "authorization_state": "UNAVAILABLE",
    "authorization_success_time": "2015-05-20T13:29:35+08:00",
    "cancel_authorization_time": "2015-05-20T13:29:35+08:00",
    "channel_id": "1230000109",
    "mchid": "1230000109",
    "notify_url": "https://www.weixin.com",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "service_id": "2002000000000558128851361561536",
    "sub_appid": "wxd678efh567hg6787",
    "sub_mchid": "1230000109",
    "sub_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "user_label": "A",
}
PAYSCORE_TERMINATE_REQUEST: dict[str, Any] = {
    "channel_id": "1230000109",
    "reason": "撤销原因",
    "service_id": "500001",
    "sub_mchid": "1230000109",
}
PAYSCORE_OPEN_RESOURCE: dict[str, Any] = {
    "appid": "wxd678efh567hg6787",
    "mch_id": "1230000109",
    "sub_appid": "wxd678efh567hg6787",
    "sub_mch_id": "1230000109",
    "service_id": "500001",
    "sub_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "user_service_status": "USER_OPEN_SERVICE",
    "openorclose_time": "20180225112233",
    "authorization_code": "4534323JKHDFE1243252",
}

CLOUDBASE_AUTH_REQUEST: dict[str, str] = {"action": "bind", "merchant_code": "1900006511"}

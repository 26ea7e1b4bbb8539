"""The WeChat Pay products, one module each: models plus a few typed coroutines.

Every coroutine takes the client first, accepts its request as the product's attrs model or a
plain mapping with the API's own field names (validated before anything is sent), and returns
an attrs model that keeps unknown answer keys in ``extra``.

* :mod:`.hk_merchants` - HK sub-merchant onboarding (``/hk/v3/merchants``)
* :mod:`.h5_permission` - WeChat Pay Global H5 payment permission
* :mod:`.payscore_permissions` - PayScore authorization for acquiring institutions
* :mod:`.cloudbase` - mini-program cloud-base WeChat Pay authorization (api.weixin.qq.com)
* :mod:`.media` - image upload for media IDs
* :mod:`.certificates` - platform certificate download
"""

from . import certificates, cloudbase, h5_permission, hk_merchants, media, payscore_permissions

__all__ = [
    "certificates",
    "cloudbase",
    "h5_permission",
    "hk_merchants",
    "media",
    "payscore_permissions",
]

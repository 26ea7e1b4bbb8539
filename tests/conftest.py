"""Shared fixtures: the official test vectors (spec §B12) and throwaway keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

VECTORS_DIR = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS_DIR / "vectors.json").read_text())
    return data


def vector_file(name: str) -> bytes:
    return (VECTORS_DIR / name).read_bytes()


@pytest.fixture(scope="session")
def rsa_key_pem() -> bytes:
    """A fresh RSA-2048 private key (PKCS#8 PEM) for tests that need any valid key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

"""Fixtures of the label tests: schema directory and user data directory, products on disk."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pds4_dir(xsm_shared: Path) -> Path:
    """``$XSM_SHARED/pds4`` (official schemas + ISO skeleton); fails when missing."""
    path = xsm_shared / "pds4"
    if not (path / "schemas" / "pds" / "v1" / "PDS4_PDS_1B00.xsd").is_file():
        pytest.fail(f"PDS4 schemas not found under {path}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def user_data_dir(tmp_path_factory) -> Path:
    """One user data dir per test session (worker): the compiled Schematron is cached there."""
    return tmp_path_factory.mktemp("xsm-data")


@pytest.fixture(autouse=True)
def pds4_env(monkeypatch, pds4_dir: Path, user_data_dir: Path) -> Path:
    monkeypatch.setenv("XSM_PDS4_SCHEMAS", str(pds4_dir / "schemas"))
    monkeypatch.setenv("XSM_DATA_DIR", str(user_data_dir))
    return pds4_dir


@pytest.fixture(scope="session")
def products_dir(tmp_path_factory) -> Path:
    """Every product type xsm writes, made once per session with the project's writers."""
    from labels_products import all_products

    out = tmp_path_factory.mktemp("products")
    all_products(out)
    return out


@pytest.fixture
def product_copy(products_dir: Path, tmp_path: Path):
    """Copy one product (by file name) into a fresh directory and return the copy."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copyfile(products_dir / name, target)
        return target

    return copy

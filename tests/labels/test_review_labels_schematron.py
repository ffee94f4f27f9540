"""Review pass on labels.validate.compiled_schematron: a failed compilation step leaves neither the
cached validator nor the earlier steps' temporary files behind."""
import pytest

from xsm.labels import validate as V
from xsm.products.errors import LabelValidationError


class _Exec:
    def __init__(self, out):
        self.out, self.error_message = out, "boom"

    def set_parameter(self, *args):
        pass

    def transform_to_string(self, source_file):
        return self.out


class _Xslt:
    def __init__(self):
        self.calls = 0

    def compile_stylesheet(self, stylesheet_file):
        self.calls += 1
        return _Exec("<xsl:stylesheet/>" if self.calls == 1 else "")  # the second step fails


class _Proc:
    def make_string_value(self, v):
        return v


def test_review_failed_schematron_step_leaves_nothing(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(V, "schematron_cache_dir", lambda: cache)
    monkeypatch.setattr(V, "_processor", lambda: (_Proc(), _Xslt()))
    with pytest.raises(LabelValidationError, match="failed: boom"):
        V.compiled_schematron("1B00")
    assert not cache.exists() or list(cache.iterdir()) == []

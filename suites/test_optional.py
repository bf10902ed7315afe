"""Absent data and GPUs skip with the line that says how to get them, except where CI requires them."""

import pytest

from bench.core import optional


@pytest.fixture
def no_fashion(monkeypatch, tmp_path):
    from bench.core import data

    monkeypatch.setattr(data.loading, "FASHION_MNIST_DIR", tmp_path / "absent")
    optional.missing_dataset.cache_clear()
    yield
    optional.missing_dataset.cache_clear()


def test_absent_dataset_skips_with_the_install_line(no_fashion, monkeypatch):
    monkeypatch.delenv("GENBENCH_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y dataset-fashion-mnist"):
        optional.need_dataset("fashion-mnist")
    optional.need_dataset("ring8")  # made in code: never absent


def test_required_dataset_fails_instead(no_fashion, monkeypatch):
    monkeypatch.setenv("GENBENCH_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="GENBENCH_REQUIRE_DATA=1, and fashion-mnist is not installed"):
        optional.need_dataset("fashion-mnist")


def test_required_gpu_fails_where_absent(monkeypatch):
    monkeypatch.setattr(optional, "missing_gpu", lambda: "missing GPU: none here")
    monkeypatch.setenv("GENBENCH_REQUIRE_GPU", "1")
    with pytest.raises(pytest.fail.Exception, match="GENBENCH_REQUIRE_GPU=1, and none here"):
        optional.need_gpu()
    monkeypatch.setenv("GENBENCH_REQUIRE_GPU", "0")
    with pytest.raises(pytest.skip.Exception, match="missing GPU: none here"):
        optional.need_gpu()


@pytest.mark.parametrize("dataset", ["fashion-mnist"])
def test_a_dataset_parameter_is_enough_to_be_skipped_or_failed(dataset, request):
    """conftest reads the `dataset` parameter: this test only runs where the data is installed."""
    from conftest import datasets_needed

    assert datasets_needed(request.node) == ["fashion-mnist"]
    assert optional.missing_dataset("fashion-mnist") is None

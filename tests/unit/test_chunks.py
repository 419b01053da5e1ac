import pytest

from connector.chunks import chunked


def test_slices_in_order_the_last_one_shorter():
    assert list(chunked(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    assert list(chunked("abcd", 2)) == [["a", "b"], ["c", "d"]]


def test_a_size_below_one_is_refused():
    with pytest.raises(ValueError):
        list(chunked([1], 0))

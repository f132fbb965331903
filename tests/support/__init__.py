"""Test fakes and data makers shared by the test folders (``from tests.support.data import make_data``)."""

import json
from decimal import Decimal

import pytest

from providers.http import encode_json


def test_decimals_are_exact_json_numbers() -> None:
    body = {"face_value": Decimal("10.10"), "fees": [Decimal("1E+2"), Decimal("-0.05")]}
    encoded = encode_json(body)
    assert b'"face_value": 10.10' in encoded
    assert json.loads(encoded, parse_float=Decimal) == {
        "face_value": Decimal("10.10"),
        "fees": [Decimal(100), Decimal("-0.05")],
    }


def test_a_string_cannot_pose_as_a_number() -> None:
    sneaky = {"message": "decimal-0000000000000000:5"}
    assert json.loads(encode_json(sneaky)) == sneaky


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), object()])
def test_what_json_cannot_hold_is_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        encode_json({"x": bad})

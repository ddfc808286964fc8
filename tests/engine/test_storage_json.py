import json
import math

import pytest

from engine.storage import write_json_atomic


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_written_json_refuses_nan_and_infinity(tmp_path, bad):
    path = tmp_path / "m.json"
    with pytest.raises(ValueError):
        write_json_atomic(path, {"trimStart": bad})
    assert not path.exists()


def test_written_json_round_trips(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": 1.5, "b": [None, "é"]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 1.5, "b": [None, "é"]}

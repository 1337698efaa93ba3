"""python -m training realism: written lines 2-4 beside the real lines of the test poems their openings came from."""

import json
from pathlib import Path

from training.corpus import CleanPoem, write_split
from training.realism import realism_report

REAL = [
    ["Sáng nay trời trở gió", "Mây trắng bay qua đồi", "Hàng cau đứng lặng lẽ", "Chim hót khắp nơi nơi"],
    ["Phố cũ mưa giăng mắc", "Em về qua lối xưa", "Đèn vàng soi góc nhỏ", "Hạt rơi suốt chiều mưa"],
    ["Bên hiên nhà mẹ đợi", "Nồi cơm chín thơm lừng", "Con về từ phố thị", "Nghe lòng bỗng rưng rưng"],
    ["Con đò chiều lặng lẽ", "Dòng sông chảy êm đềm", "Bến quê xa mờ khói", "Trăng lên sáng bên thềm"],
    ["Tiếng ve gọi mùa hạ", "Phượng đỏ rực sân trường", "Bạn bè chia tay vội", "Lưu bút đầy yêu thương"],
    ["Lá rơi đầy lối cũ", "Gió thổi lạnh vai gầy", "Người đi không trở lại", "Mùa thu vẫn còn đây"],
]
TRAIN = [["Mây trắng bay qua núi", "Dòng sông chảy êm đềm", "Gió thổi lạnh vai gầy", "Chim hót khắp nơi nơi"]]


def data_dir(tmp_path):
    write_split([CleanPoem(tuple(p), "5chu", "", "test") for p in REAL], tmp_path / "data" / "test.jsonl")
    write_split([CleanPoem(tuple(p), "5chu", "", "test") for p in TRAIN], tmp_path / "data" / "train.jsonl")
    return tmp_path / "data"


def generated(tmp_path, poems) -> Path:
    path = tmp_path / "poems.jsonl"
    rows = [{"form": "5chu", "lines": p} for p in poems]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_real_lines_themselves_score_as_real(tmp_path):
    report = realism_report(generated(tmp_path, REAL), data_dir(tmp_path))
    assert report["matched"] == len(REAL)
    assert report["written"] == report["real"]
    assert report["real"]["copy_rate"] > 0  # "Dòng sông chảy êm đềm" and two more lines occur in training


def test_one_stock_continuation_everywhere_is_repetitive_and_told_apart(tmp_path):
    stock = [[p[0], *TRAIN[0][1:]] for p in REAL]
    report = realism_report(generated(tmp_path, stock), data_dir(tmp_path))
    assert report["written"]["distinct_2"] < report["real"]["distinct_2"]
    assert report["written"]["copy_rate"] == 1.0
    assert report["discriminator"] > 0.8


def test_poems_from_other_openings_are_left_out(tmp_path):
    report = realism_report(generated(tmp_path, [*REAL[:2], ["Một câu không có", "a", "b", "c"]]), data_dir(tmp_path))
    assert (report["poems"], report["matched"]) == (3, 2)

"""`coursekit doctor`: every check passes here, and each one notices the problem it is for."""
import importlib.metadata as metadata
import json
import shutil

import numpy as np
import pytest
import torch

from coursekit import cli, doctor, zoo


def statuses(checks):
    return {c.name: c.status for c in checks}


@pytest.fixture()
def weights_copy(tmp_path):
    """A writable copy of the shipped weights folder."""
    folder = tmp_path / "weights"
    shutil.copytree(zoo.weights_dir(), folder)
    return folder


def test_this_machine_is_ready(monkeypatch):
    monkeypatch.delenv("COURSEKIT_DEVICE", raising=False)
    report = doctor.run()
    fails = [c for c in report if c.status == "FAIL"]
    assert not fails, str(report)
    assert report.exit_code == 0 and report.ok
    names = {c.name for c in report}
    assert {"python", "packages", "widgets", "widget extension", "widget render", "kernel", "weights",
            "embedded MNIST", "MNIST train", "MNIST test", "device"} <= names
    text = str(report)
    assert text.splitlines()[0] == "coursekit doctor" and "0 FAIL: ready for the course" in text


def test_every_shipped_weights_file_is_verified():
    (summary, *rest) = doctor.check_weights()
    assert summary.status == "OK", summary
    assert f"{len(zoo.manifest())}/{len(zoo.manifest())} shipped models verified" in summary.detail
    assert all(name in summary.detail for name in zoo.manifest())


def test_corrupted_weights_fail_with_the_model_named(weights_copy):
    path = weights_copy / "mnist_cnn.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    checks = doctor.check_weights(weights_copy)
    by = {c.name: c for c in checks}
    assert by["weights mnist_cnn"].status == "FAIL"
    assert "sha256" in by["weights mnist_cnn"].detail and "zoo build mnist_cnn" in by["weights mnist_cnn"].fix
    assert by["weights"].status == "WARN", "the other models are still fine"
    assert doctor.Report(checks).exit_code == 1


def test_cli_exits_non_zero_on_corrupted_weights(weights_copy, monkeypatch, capsys):
    (weights_copy / "mnist_mlp.pt").write_bytes(b"not a model")
    monkeypatch.setattr(zoo, "weights_dir", lambda: weights_copy)
    monkeypatch.delenv("COURSEKIT_DEVICE", raising=False)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  weights mnist_mlp" in out and "NOT ready" in out
    assert cli.main(["doctor", "--json"]) == 1
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["ok"] is False
    assert {"name": "weights mnist_mlp", "status": "FAIL"}.items() <= [
        c for c in parsed["checks"] if c["name"] == "weights mnist_mlp"][0].items()


def test_missing_and_unlisted_weights(weights_copy):
    (weights_copy / "mnist_logreg.pt").unlink()
    shutil.copy(weights_copy / "mnist_cnn.pt", weights_copy / "my_experiment.pt")
    by = statuses(doctor.check_weights(weights_copy))
    assert by["weights mnist_logreg"] == "FAIL"
    assert by["weights my_experiment"] == "WARN"
    (weights_copy / "manifest.json").write_text("{broken")
    assert statuses(doctor.check_weights(weights_copy)) == {"weights": "FAIL"}


def test_embedded_data_hash(tmp_path):
    from coursekit import data

    real = data._embedded_path("mnist")
    assert doctor.check_embedded_data(real)[0].status == "OK"
    with np.load(real) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    arrays["test_labels"][0] = (arrays["test_labels"][0] + 1) % 10  # one wrong label
    edited = tmp_path / "mnist_embedded.npz"
    np.savez_compressed(edited, **arrays)
    (check,) = doctor.check_embedded_data(edited)
    assert check.status == "FAIL" and "hash" in check.detail
    (tmp_path / "garbage.npz").write_bytes(b"PK nonsense")
    assert doctor.check_embedded_data(tmp_path / "garbage.npz")[0].status == "FAIL"


def test_data_sources_name_the_embedded_fallback_and_the_mirror(offline, monkeypatch):
    by = {c.name: c for c in doctor.check_data_sources()}
    assert by["MNIST train"].status == "OK" and "embedded" in by["MNIST train"].detail
    assert "COURSEKIT_DATA" in by["MNIST train"].fix


def test_data_sources_with_the_mirror(mnist_mirror, monkeypatch):
    monkeypatch.setenv("COURSEKIT_DATA", str(mnist_mirror))
    by = {c.name: c for c in doctor.check_data_sources()}
    assert "mirror" in by["MNIST test"].detail and by["MNIST test"].status == "OK"


def test_python_and_packages_out_of_range(monkeypatch):
    monkeypatch.setattr(doctor.platform, "python_version", lambda: "3.9.18")
    (check,) = doctor.check_python()
    assert check.status == "FAIL" and ">=3.10" in check.detail
    real_version = metadata.version

    def fake_version(name):
        if name == "torch":
            return "1.13.1"
        if name == "nbgrader":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(doctor.metadata, "version", fake_version)
    by = {c.name: c for c in doctor.check_packages()}
    assert by["packages"].status == "WARN"
    assert by["package torch"].status == "FAIL" and "1.13.1 installed" in by["package torch"].detail
    assert by["package torch"].fix.startswith("pip install 'torch")
    assert by["package nbgrader"].status == "FAIL" and "not installed" in by["package nbgrader"].detail


def test_widget_problems_are_reported(monkeypatch):
    monkeypatch.setattr(doctor, "find_widget_extension", lambda: None)
    assert statuses(doctor.check_widgets())["widget extension"] == "FAIL"
    real_version = metadata.version
    monkeypatch.setattr(doctor.metadata, "version",
                        lambda name: "1.1.0" if name == "jupyterlab_widgets" else real_version(name))
    by = {c.name: c for c in doctor.check_widgets()}
    assert by["widgets"].status == "FAIL" and "jupyterlab_widgets 1.1.0" in by["widgets"].detail


def test_device_check(monkeypatch):
    monkeypatch.delenv("COURSEKIT_DEVICE", raising=False)
    (check,) = doctor.check_device()
    assert check.status == "OK" and check.detail.startswith("device ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSEKIT_DEVICE", "cuda")
    (check,) = doctor.check_device()
    assert check.status == "FAIL" and "no CUDA device" in check.detail


def test_a_crashing_check_is_a_fail_line_and_the_rest_still_run():
    def check_broken():
        raise OSError("disk on fire")

    report = doctor.run([check_broken, doctor.check_embedded_data])
    assert [c.status for c in report] == ["FAIL", "OK"]
    assert report[0].name == "broken" and "disk on fire" in report[0].detail


def test_report_renders_in_a_notebook():
    report = doctor.Report([doctor.Check("a", "OK", "fine"), doctor.Check("b", "WARN", "<odd>", "do x")])
    html = report._repr_html_()
    assert "&lt;odd&gt;" in html and "do x" in html and "1 OK, 1 WARN, 0 FAIL" in html
    assert report.exit_code == 0
    with pytest.raises(ValueError):
        doctor.Check("c", "MAYBE", "?")


# ---------------------------------------------------------------- COURSEKIT_DATA, when it is set

def mirror_checks(monkeypatch, folder):
    monkeypatch.setenv("COURSEKIT_DATA", str(folder))
    return {c.name: c for c in doctor.check_data_mirror()}


def test_unset_mirror_adds_no_line(monkeypatch):
    monkeypatch.delenv("COURSEKIT_DATA", raising=False)
    assert doctor.check_data_mirror() == []
    monkeypatch.setenv("COURSEKIT_DATA", "")     # what `make` exports when there is no mirror
    assert doctor.check_data_mirror() == []


def test_missing_mirror_folder_is_named_and_not_advised_again(monkeypatch, offline):
    by = mirror_checks(monkeypatch, offline / "no-such-folder")
    check = by["COURSEKIT_DATA"]
    assert check.status == "WARN" and "does not exist" in check.detail and "no-such-folder" in check.detail
    assert "unset it" in check.fix and "MNIST/raw" in check.fix
    sources = {c.name: c for c in doctor.check_data_sources()}
    assert "embedded" in sources["MNIST train"].detail
    assert "set COURSEKIT_DATA to a folder" not in sources["MNIST train"].fix, "it is set already"
    assert "see the COURSEKIT_DATA line" in sources["MNIST train"].fix
    assert "COURSEKIT_DATA" in {c.name for c in doctor.run()}


def test_mirror_pointing_at_the_raw_folder_names_the_right_setting(monkeypatch, mnist_mirror):
    check = mirror_checks(monkeypatch, mnist_mirror / "MNIST" / "raw")["COURSEKIT_DATA"]
    assert check.status == "WARN" and "wrong layout" in check.detail
    assert f"COURSEKIT_DATA={mnist_mirror}" in check.fix


def test_malformed_mirror_files_without_torchvisions_layout(monkeypatch, tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"")       # the files, but flat in the folder
    (tmp_path / "notes.txt").write_text("my MNIST copy")
    check = mirror_checks(monkeypatch, tmp_path)["COURSEKIT_DATA"]
    assert check.status == "WARN" and "no MNIST/raw/" in check.detail
    assert "move them to <folder>/MNIST/raw/" in check.fix
    empty = tmp_path / "empty"
    empty.mkdir()
    check = mirror_checks(monkeypatch, empty)["COURSEKIT_DATA"]
    assert "put torchvision's four MNIST files" in check.fix


def test_partial_and_truncated_mirror(monkeypatch, mnist_mirror, tmp_path):
    import gzip

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_mirror / "MNIST" / "raw" / name, raw / name)
    check = mirror_checks(monkeypatch, tmp_path)["COURSEKIT_DATA MNIST"]
    assert check.status == "WARN" and "partial mirror: missing train-images-idx3-ubyte.gz" in check.detail
    from coursekit import data

    assert data.find_source("mnist", "test", download=False).kind == "mirror", "the whole split is still used"
    # a cut download: the header promises 10,000 labels, the file holds 100
    labels = gzip.decompress((mnist_mirror / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels[:108]))
    shutil.copy(mnist_mirror / "MNIST" / "raw" / "train-images-idx3-ubyte.gz", raw)
    check = mirror_checks(monkeypatch, tmp_path)["COURSEKIT_DATA MNIST"]
    assert check.status == "WARN" and "t10k-labels-idx1-ubyte.gz" in check.detail and "truncated" in check.detail
    assert "missing" not in check.detail


def test_complete_mirror_is_ok(monkeypatch, mnist_mirror):
    by = mirror_checks(monkeypatch, mnist_mirror)
    assert by["COURSEKIT_DATA MNIST"].status == "OK" and "60,000 train" in by["COURSEKIT_DATA MNIST"].detail
    assert by["COURSEKIT_DATA FashionMNIST"].status == "OK"

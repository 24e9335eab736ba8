import subprocess
import sys

import pytest
import torch

from coursekit import data, training, zoo
from coursekit.checks import CourseKitError, check_images


@pytest.mark.parametrize("name", ["mnist_cnn", "mnist_mlp"])
def test_shipped_models_load_in_eval_mode_and_match_manifest(name):
    model = zoo.load(name)
    assert not model.training
    record = zoo.manifest()[name]
    assert zoo.sha256_of(zoo.weights_dir() / f"{name}.pt") == record["sha256"]
    assert "seed" in record["recipe"] and "accuracy" in record and record["parameters"] > 0
    logits = model(torch.rand(5, 1, 28, 28))
    assert logits.shape == (5, 10)


def test_cnn_reaches_99_percent_on_the_real_mnist_test_set(mnist_mirror, monkeypatch):
    monkeypatch.setenv("COURSEKIT_DATA", str(mnist_mirror))
    x, y = data.load_mnist("test")
    assert len(x) == 10000
    acc = training.accuracy(zoo.load("mnist_cnn"), x, y)
    assert acc >= 0.99
    assert abs(acc - zoo.manifest()["mnist_cnn"]["accuracy"]) < 1e-6  # the manifest tells the truth
    assert training.accuracy(zoo.load("mnist_mlp"), x, y) >= 0.97


def test_total_shipped_weights_stay_small():
    total = sum(p.stat().st_size for p in zoo.weights_dir().glob("*.pt"))
    # A few MB per model. The largest, dcgan_mnist (2.9M parameters, 5.9 MB in float16), is the size that took
    # its MNIST FID from 59 to 18 (docs/benchmarks.md, GAN round 2); the limit was 12 MB before it.
    assert total < 16e6, f"shipped weights take {total / 1e6:.1f} MB"


def test_unknown_model_and_missing_weights(monkeypatch, tmp_path):
    with pytest.raises(CourseKitError, match="Unknown model 'resnet9000'.*mnist_cnn"):
        zoo.load("resnet9000")
    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path)
    with pytest.raises(zoo.MissingWeightsError, match="coursekit zoo build mnist_cnn"):
        zoo.load("mnist_cnn")


def test_corrupt_weights_are_detected(monkeypatch, tmp_path):
    import shutil

    for f in zoo.weights_dir().iterdir():
        shutil.copy(f, tmp_path / f.name)
    with open(tmp_path / "mnist_cnn.pt", "ab") as f:
        f.write(b"tampered")
    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path)
    with pytest.raises(CourseKitError, match="sha256"):
        zoo.load("mnist_cnn")


def test_torchvision_models_need_cached_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(zoo.MissingWeightsError, match="hub/checkpoints|never downloads"):
        zoo.load("torchvision/resnet18")
    with pytest.raises(CourseKitError, match="no model named"):
        zoo.load("torchvision/not_a_net")


def test_torchvision_model_loads_from_cache_with_normalisation_inside(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.get_model_weights("resnet18").DEFAULT
    net = torchvision.models.resnet18(weights=None)
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(net.state_dict(), ckpt / weights.url.rsplit("/", 1)[1])
    model = zoo.load("torchvision/resnet18").eval()
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(model(x), net.eval()(((x - mean) / std)), atol=1e-5)


def test_build_recipe_refuses_the_embedded_subset(offline):
    from coursekit import recipes

    entry = zoo.ENTRIES["mnist_mlp"]
    with pytest.raises(CourseKitError, match="full MNIST"):
        recipes.TRAINERS[entry.trainer](entry.build(), entry.recipe)
    for split in ("train", "test"):     # the one check every recipe (classifiers, GANs) calls
        with pytest.raises(CourseKitError, match=f"full MNIST.*found [0-9]+ {split} images.*COURSEKIT_DATA"):
            recipes.full_mnist(split)
    with pytest.raises(CourseKitError, match="No build recipe for 'no_such_model'"):
        recipes.build(["no_such_model"])
    with pytest.raises(CourseKitError, match="No build recipe for 'mobilenet_v1_imagenet'.*mnist_cnn"):
        recipes.build(["mobilenet_v1_imagenet"])


def test_the_manifest_records_the_recipe_each_trained_entry_declares():
    """A recipe edited without rebuilding the weights would make the manifest lie."""
    shipped = zoo.manifest()
    trained = [name for name, entry in zoo.ENTRIES.items() if entry.trainer is not None]
    assert trained and all(name in shipped for name in trained)
    for name in trained:
        assert shipped[name]["recipe"] == zoo.ENTRIES[name].recipe, name


def test_every_trained_entry_names_a_recipe_and_every_recipe_is_used():
    from coursekit import recipes

    named = {e.trainer for e in zoo.ENTRIES.values() if e.trainer is not None}
    assert named == set(recipes.TRAINERS)
    assert zoo.ENTRIES["mobilenet_v1_imagenet"].trainer is None     # ported, not trained here


def test_build_trains_saves_float16_and_records_what_load_verifies(monkeypatch, tmp_path, capsys):
    from coursekit import recipes
    from coursekit.models import LogisticRegression

    def fake_recipe(model, recipe):          # stands for a real recipe: sets weights, returns figures
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.linspace(-1, 1, p.numel()).view_as(p) / 3)
        return {"accuracy": 0.5}

    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path)
    monkeypatch.setitem(recipes.TRAINERS, "fake", fake_recipe)
    monkeypatch.setitem(zoo.ENTRIES, "tiny_logreg", zoo.ZooEntry(
        "tiny_logreg", "a test model", LogisticRegression, "fake", {"seed": 3, "storage_dtype": "float16"}))
    recipes.build(["tiny_logreg"])
    record = zoo.manifest()["tiny_logreg"]
    assert record["accuracy"] == 0.5 and record["recipe"]["seed"] == 3 and record["parameters"] == 7850
    assert record["sha256"] == zoo.sha256_of(tmp_path / "tiny_logreg.pt")
    stored = torch.load(tmp_path / "tiny_logreg.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored.values())
    model = zoo.load("tiny_logreg")                                   # verified against the manifest
    expected = torch.linspace(-1, 1, 7840).view(10, 784) / 3
    assert not model.training and torch.equal(model.linear.weight, expected.half().float())
    assert "building tiny_logreg" in capsys.readouterr().out


def test_loading_a_model_never_imports_a_trainer():
    trainers = ["coursekit.recipes", "coursekit.training", "coursekit.defenses"]
    code = ("import sys, coursekit.zoo as zoo\n"
            "for name in ('mnist_cnn', 'mnist_cnn_robust', 'dcgan_mnist', 'cgan_mnist'):\n"
            "    zoo.load(name)\n"
            f"print([m for m in {trainers!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_check_images_errors_teach():
    with pytest.raises(CourseKitError, match="unsqueeze"):
        check_images(torch.rand(1, 28, 28))
    with pytest.raises(CourseKitError, match="float"):
        check_images(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(CourseKitError, match=r"\[0, 1\]"):
        check_images(torch.rand(1, 1, 28, 28) * 255)
    with pytest.raises(CourseKitError, match="torch.Tensor"):
        check_images([[0.0]])


def test_import_coursekit_is_fast_and_does_not_import_torch():
    code = ("import time, sys; t = time.perf_counter(); import coursekit; "
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"
    assert float(out[0]) < 1.0

"""GAN applications: translation, super-resolution, synthetic private data, manufacturing defects."""
import math

import numpy as np
import pytest
import torch

from coursekit.applications import manufacturing as mf
from coursekit.applications import private, superres, translation
from coursekit.checks import CourseKitError


@pytest.fixture(scope="module")
def digits():
    from coursekit import data

    x, y = data.load_mnist("train", limit=600)
    return x, y


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ====================================================================== package

def test_package_is_lazy_and_lists_its_parts():
    import coursekit.applications as apps

    assert set(apps.__all__) == {"translation", "superres", "private", "manufacturing", "explore", "studies"}
    assert apps.superres is superres
    with pytest.raises(AttributeError):
        apps.no_such_part


# ====================================================================== the GAN steps underneath

def test_generator_step_adds_an_application_term():
    """The applications' G objectives are gan.generator_step plus extra_loss(fake), weighted."""
    import copy

    from coursekit import gan

    torch.manual_seed(0)
    G, D = gan.MLPGenerator(z_dim=4, hidden=16), gan.MLPDiscriminator(hidden=16)
    G_by_hand = copy.deepcopy(G)
    z = torch.randn(8, 4)
    extra = lambda fake: (fake ** 2).mean()  # noqa: E731
    stats = gan.generator_step(G, D, torch.optim.SGD(G.parameters(), lr=0.1), z, extra_loss=extra,
                               adversarial_weight=0.5)
    fake = G_by_hand(z)
    adversarial = gan.non_saturating_generator_loss(D(fake))
    loss = 0.5 * adversarial + extra(fake)
    opt = torch.optim.SGD(G_by_hand.parameters(), lr=0.1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert set(stats) == {"g_loss", "adversarial", "extra"}
    assert stats["g_loss"] == pytest.approx(loss.item()) and stats["adversarial"] == pytest.approx(adversarial.item())
    assert all(torch.allclose(a, b) for a, b in zip(G.parameters(), G_by_hand.parameters()))
    with pytest.raises(CourseKitError, match="scalar"):
        gan.generator_step(G, D, opt, z, extra_loss=lambda fake: fake)
    with pytest.raises(CourseKitError, match="adversarial_weight"):
        gan.generator_step(G, D, opt, z, extra_loss=extra, adversarial_weight=-1)


def test_the_application_loops_are_built_on_the_gan_steps(digits, monkeypatch):
    """pix2pix, CycleGAN, SRGAN and the defect GAN each take one D step and one G step of coursekit.gan."""
    from coursekit import gan

    calls = []

    def counting(name, step):
        def counted(*args, **kwargs):
            calls.append(name)
            return step(*args, **kwargs)
        return counted

    for module in (translation, superres):
        monkeypatch.setattr(module, "discriminator_step", counting("D", gan.discriminator_step))
        monkeypatch.setattr(module, "generator_step", counting("G", gan.generator_step))
    monkeypatch.setattr(gan, "discriminator_step", counting("D", gan.discriminator_step))
    monkeypatch.setattr(gan, "generator_step", counting("G", gan.generator_step))
    x = digits[0][:64]
    torch.manual_seed(0)
    translation.train_pix2pix(translation.UNetGenerator(4), translation.PatchDiscriminator(4), x,
                              translation.translate_domain(x), steps=2, batch_size=8, progress=False)
    assert calls == ["D", "G"] * 2
    calls.clear()
    d_a, d_b = (translation.PatchDiscriminator(4, conditional=False) for _ in range(2))
    translation.train_cyclegan(translation.CycleGAN(4), d_a, d_b, *translation.unpaired_domains(x), steps=2,
                               batch_size=8, progress=False)
    assert calls == ["D", "D", "G"] * 2   # one D step per domain, one G step for both generators
    calls.clear()
    superres.train_srgan(superres.SRGenerator(2, channels=4, blocks=1), superres.srgan_discriminator(4), x,
                         steps=2, batch_size=8, progress=False)
    assert calls == ["D", "G"] * 2
    calls.clear()
    data = mf.defect_dataset(20, 3, 3, seed=0)
    mf.train_defect_gan(data.x[data.y > 0], data.y[data.y > 0] - 1, data.x[data.y == 0], steps=2, batch_size=4,
                        channels=4, progress=False)
    assert calls == ["D", "G"] * 2


# ====================================================================== translation

def test_domains_are_the_documented_operations(digits):
    x = digits[0][:16]
    thick = translation.translate_domain(x, "thicken")
    assert torch.equal(thick, torch.nn.functional.max_pool2d(x, 3, 1, 1))
    assert (thick >= x).all() and thick.sum() > x.sum()
    assert torch.allclose(translation.translate_domain(x, "invert"), 1 - x)
    edges = translation.translate_domain(x, "edges")
    assert edges.min() >= 0 and edges.max() <= 1 and edges.shape == x.shape
    with pytest.raises(CourseKitError, match="Unknown domain kind"):
        translation.translate_domain(x, "zebra")


def test_unpaired_domains_are_disjoint_halves(digits):
    x = digits[0][:20]
    a, b = translation.unpaired_domains(x, "invert", seed=3)
    assert a.shape == b.shape == (10, 1, 28, 28)
    # no image of B is the translation of an image of A
    back = 1 - b
    assert not any(torch.equal(back[i], a[j]) for i in range(10) for j in range(10))
    a2, _ = translation.unpaired_domains(x, "invert", seed=3)
    assert torch.equal(a, a2)


def test_cycle_consistency_loss_is_the_mean_absolute_round_trip_error():
    x = torch.zeros(2, 1, 4, 4)
    rec = x.clone()
    rec[0, 0, 0, 0] = 0.8
    rec[1, 0, 3, 3] = 0.4
    assert translation.cycle_consistency_loss(x, rec).item() == pytest.approx(1.2 / 32)
    assert translation.cycle_consistency_loss(x, x).item() == 0
    with pytest.raises(CourseKitError, match="same shape"):
        translation.cycle_consistency_loss(x, rec[:1])


def test_pix2pix_generator_loss_adds_weighted_l1():
    from coursekit.gan import non_saturating_generator_loss

    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    fake, target = torch.full((2, 1, 2, 2), 0.5), torch.zeros(2, 1, 2, 2)
    expected = non_saturating_generator_loss(logits.reshape(-1)) + 10 * 0.5
    assert translation.pix2pix_generator_loss(logits, fake, target, 10).item() == pytest.approx(expected.item())


def test_models_have_the_documented_shapes():
    x = torch.rand(3, 1, 28, 28)
    g = translation.UNetGenerator(4)
    out = g(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    d = translation.PatchDiscriminator(4)
    assert d(out, x).shape == (3, 7, 7)
    with pytest.raises(CourseKitError, match="conditional"):
        d(out)
    with pytest.raises(CourseKitError, match="unconditional"):
        translation.PatchDiscriminator(4, conditional=False)(out, x)


def test_pix2pix_beats_doing_nothing_within_a_small_budget(digits):
    source, target = translation.paired_domains(digits[0][:256], "thicken")
    torch.manual_seed(0)
    g, d = translation.UNetGenerator(8), translation.PatchDiscriminator(8)
    history = translation.train_pix2pix(g, d, source, target, steps=60, batch_size=16, lr=2e-3, progress=False,
                                        snapshot_every=20, snapshot_inputs=source[:5])
    assert len(history["d_loss"]) == 60 and not g.training
    assert history["snapshot_steps"] == [0, 20, 40, 60] and history["snapshots"][0].shape == (5, 1, 28, 28)
    assert torch.equal(history["snapshots"][-1], translation.translate(g, source[:5]))
    from coursekit.applications.explore import SnapshotExplorer

    explorer = SnapshotExplorer(history, source, target, n_show=5)
    images, names = explorer.rows(3)
    assert images.shape == (15, 1, 28, 28) and names[1] == "output, step 60"
    assert explorer.static() is not None
    with pytest.raises(CourseKitError, match="index"):
        explorer.rows(4)
    with pytest.raises(CourseKitError, match="snapshot_inputs"):
        translation.train_pix2pix(g, d, source, target, steps=1, snapshot_every=1, progress=False)
    error = translation.translation_error(g, digits[0][256:356], translation.translate_domain(digits[0][256:356]))
    assert error["l1_output"] < 0.5 * error["l1_source"], error


def _pix2pix_step_by_hand(generator, discriminator, g_optimizer, d_optimizer, source, target, l1_weight=100.0):
    import torch.nn.functional as F

    fake = generator(source)
    real_logits, fake_logits = discriminator(target, source), discriminator(fake.detach(), source)
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    fake_logits = discriminator(fake, source)
    g_loss = (F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
              + l1_weight * (fake - target).abs().mean())
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}


def test_pix2pix_step_is_the_two_updates_written_by_hand(digits):
    source = translation.translate_domain(digits[0][:8], "edges")
    target = digits[0][:8]
    results = []
    for step in (translation.pix2pix_step, _pix2pix_step_by_hand):
        torch.manual_seed(0)
        g, d = translation.UNetGenerator(4), translation.PatchDiscriminator(4)
        # SGD: Adam would magnify float noise in the biases that instance norm cancels (true gradient 0)
        opt_g, opt_d = torch.optim.SGD(g.parameters(), lr=0.1), torch.optim.SGD(d.parameters(), lr=0.1)
        losses = [step(g, d, opt_g, opt_d, source, target, 10.0) for _ in range(2)]
        results.append((losses, torch.cat([p.detach().flatten() for p in (*g.parameters(), *d.parameters())])))
    (mine, weights), (by_hand, weights_by_hand) = results
    assert all(a["d_loss"] == pytest.approx(b["d_loss"], rel=1e-5) and a["g_loss"] == pytest.approx(b["g_loss"], rel=1e-5)
               for a, b in zip(mine, by_hand))
    assert torch.allclose(weights, weights_by_hand, atol=1e-6)
    assert mine[0]["g_loss"] == pytest.approx(mine[0]["adversarial"] + 10.0 * mine[0]["l1"], rel=1e-5)
    # train_pix2pix runs any step with this signature (a learner's own, in the notebook)
    torch.manual_seed(0)
    g, d = translation.UNetGenerator(4), translation.PatchDiscriminator(4)
    history = translation.train_pix2pix(g, d, source, target, steps=3, batch_size=4, progress=False,
                                        step=_pix2pix_step_by_hand)
    assert len(history["l1"]) == 3 and all(v > 0 for v in history["l1"])


def test_cyclegan_trains_and_records_cycle_loss(digits):
    a, b = translation.unpaired_domains(digits[0][:128], "invert")
    torch.manual_seed(0)
    cg = translation.CycleGAN(4)
    d_a, d_b = (translation.PatchDiscriminator(4, conditional=False) for _ in range(2))
    h = translation.train_cyclegan(cg, d_a, d_b, a, b, steps=30, batch_size=16, lr=2e-3, progress=False)
    assert len(h["cycle"]) == 30 and h["cycle"][-1] < h["cycle"][0]
    with pytest.raises(CourseKitError, match="unconditional"):
        translation.train_cyclegan(cg, translation.PatchDiscriminator(4), d_b, a, b, steps=1, progress=False)


# ====================================================================== super-resolution

def test_downsample_and_bicubic_shapes_and_errors(digits):
    x = digits[0][:4]
    lr2, lr4 = superres.downsample(x, 2), superres.downsample(x, 4)
    assert lr2.shape == (4, 1, 14, 14) and lr4.shape == (4, 1, 7, 7)
    assert lr2[0, 0, 0, 0] == pytest.approx(float(x[0, 0, :2, :2].mean()))
    up = superres.bicubic_upsample(lr2, 2)
    assert up.shape == x.shape and up.min() >= 0 and up.max() <= 1
    with pytest.raises(CourseKitError, match="factor"):
        superres.downsample(x, 3)


def test_psnr_matches_skimage_and_the_formula(digits):
    from skimage.metrics import peak_signal_noise_ratio

    x = digits[0][:5]
    y = superres.bicubic_upsample(superres.downsample(x, 2), 2)
    ours = superres.psnr(y, x)
    ref = [peak_signal_noise_ratio(x[i, 0].numpy(), y[i, 0].numpy(), data_range=1.0) for i in range(5)]
    assert np.allclose(ours.numpy(), ref, atol=1e-4)
    # a constant error of 0.1 everywhere: 10 log10(1 / 0.01) = 20 dB
    assert superres.psnr(torch.full((1, 1, 8, 8), 0.6), torch.full((1, 1, 8, 8), 0.5)).item() == pytest.approx(20, abs=1e-4)
    assert math.isinf(superres.psnr(x[:1], x[:1]).item())


def test_ssim_matches_skimage_gaussian_ssim(digits):
    from skimage.metrics import structural_similarity

    x = digits[0][:6]
    g = torch.Generator().manual_seed(0)
    candidates = [superres.bicubic_upsample(superres.downsample(x, 4), 4),
                  (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)]
    for y in candidates:
        ours = superres.ssim(y, x)
        ref = [structural_similarity(x[i, 0].numpy().astype(np.float64), y[i, 0].numpy().astype(np.float64),
                                     data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False) for i in range(len(x))]
        assert np.allclose(ours.numpy(), ref, atol=1e-5), (ours, ref)
    assert torch.allclose(superres.ssim(x, x), torch.ones(len(x)))
    assert superres.gaussian_window(11, 1.5).sum().item() == pytest.approx(1.0)
    with pytest.raises(CourseKitError, match="smaller than"):
        superres.ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(CourseKitError, match="same shape"):
        superres.ssim(x, x[:2])


def test_untrained_generator_starts_at_bicubic(digits):
    x_lr = superres.downsample(digits[0][:4], 2)
    torch.manual_seed(0)
    g = superres.SRGenerator(2, channels=8, blocks=1)
    base = superres.bicubic_upsample(x_lr, 2).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(superres.super_resolve(g, x_lr), base, atol=1e-5)
    assert superres.SRGenerator(4, channels=8, blocks=1)(superres.downsample(digits[0][:2], 4)).shape == (2, 1, 28, 28)


def test_content_and_generator_losses():
    from coursekit.gan import non_saturating_generator_loss

    sr, hr = torch.full((2, 1, 4, 4), 0.3), torch.full((2, 1, 4, 4), 0.1)
    assert superres.content_loss(sr, hr).item() == pytest.approx(0.04)
    logits = torch.tensor([0.0, 1.0])
    expected = 0.04 + 0.5 * non_saturating_generator_loss(logits).item()
    assert superres.srgan_generator_loss(logits, sr, hr, adversarial_weight=0.5).item() == pytest.approx(expected)
    phi = torch.nn.Flatten()
    assert superres.content_loss(sr, hr, phi, 2.0).item() == pytest.approx(0.04 * 3)


def test_srgan_beats_bicubic_and_is_deterministic(digits):
    x = digits[0]
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        g, d = superres.SRGenerator(2, channels=8, blocks=1), superres.srgan_discriminator(8)
        h = superres.train_srgan(g, d, x[:400], steps=40, batch_size=16, lr=3e-3, seed=1, progress=False)
        runs.append((g, h))
    assert runs[0][1]["content"] == runs[1][1]["content"]
    assert not runs[0][0].training and not any(p.grad is not None for p in d.parameters())
    scores = superres.evaluate_superres({"srgan": runs[0][0]}, x[400:500], 2)
    assert scores["srgan"]["psnr"] > scores["bicubic"]["psnr"] + 1.0, scores
    assert scores["srgan"]["ssim"] > scores["bicubic"]["ssim"], scores


# ====================================================================== private data

def test_nearest_neighbours_on_a_constructed_case():
    refs = torch.zeros(3, 1, 2, 2)
    refs[1] = 1.0
    refs[2, 0, 0, 0] = 1.0
    queries = torch.stack([refs[1], torch.full((1, 2, 2), 0.1), refs[2] * 0.5])
    d, idx = private.nearest_neighbours(queries, refs, batch_size=2)
    assert idx.tolist() == [1, 0, 0] or idx.tolist() == [1, 0, 2]
    assert d[0].item() < 1e-6  # an exact copy
    assert d[1].item() == pytest.approx(0.2)  # sqrt(4 * 0.01)
    assert d[2].item() == pytest.approx(0.5)  # tie between refs 0 and 2
    brute = torch.cdist(queries.flatten(1), refs.flatten(1)).min(1).values
    assert torch.allclose(private.nearest_neighbour_distances(queries, refs), brute, atol=1e-6)
    with pytest.raises(CourseKitError, match="same size"):
        private.nearest_neighbours(queries, torch.zeros(2, 1, 3, 3))


def test_memorisation_report_flags_copies(digits):
    x = digits[0]
    train, test = x[:200], x[200:300]
    copied = private.memorisation_report(train[:50], train, test)
    assert copied["median_synthetic"] < 1e-5 and copied["copies"] == 1.0 and copied["ratio"] < 1e-5
    fresh = private.memorisation_report(x[300:350], train, test)
    assert 0.7 < fresh["ratio"] < 1.3 and fresh["copies"] < 0.1
    assert fresh["synthetic_to_train"].shape == (50,) and fresh["test_to_train"].shape == (100,)


def test_synthetic_dataset_is_labelled_and_repeatable():
    from coursekit.gan import ConditionalGenerator, DCGANGenerator

    torch.manual_seed(0)
    g = ConditionalGenerator(8, 10, 8)
    x1, y1 = private.synthetic_dataset(g, 25, seed=4)
    x2, _ = private.synthetic_dataset(g, 25, seed=4)
    assert x1.shape == (25, 1, 28, 28) and torch.equal(x1, x2)
    assert torch.bincount(y1).tolist() == [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]
    with pytest.raises(CourseKitError, match="conditional"):
        private.synthetic_dataset(DCGANGenerator(8, 8), 5)


def test_tstr_uses_the_same_classifier_for_both_sets(digits):
    x, y = digits
    real = (x[:300], y[:300])
    report = private.tstr_report(real, real, (x[300:500], y[300:500]), epochs=2)
    assert report["train_real_test_real"] == report["train_synthetic_test_real"] and report["ratio"] == 1
    assert report["train_real_test_real"] > 0.5
    # labels that carry no information: a classifier trained on them is near chance
    shuffled = (x[:300], y[:300][torch.randperm(300, generator=torch.Generator().manual_seed(0))])
    noise = private.train_test_accuracy(*shuffled, x[300:500], y[300:500], epochs=2)
    assert noise < report["train_real_test_real"] - 0.2


def test_conditional_gan_trains(digits):
    g, h = private.train_conditional_gan(*digits, steps=5, batch_size=32, seed=0, progress=False)
    assert len(h["g_loss"]) == 5 and not g.training and g.num_classes == 10


# ====================================================================== manufacturing

def test_texture_patches_are_real_crops_in_range():
    p = mf.texture_patches(12, seed=0)
    assert p.shape == (12, 1, 28, 28) and p.min() >= 0.25 and p.max() <= 0.75
    assert torch.equal(p, mf.texture_patches(12, seed=0)) and not torch.equal(p, mf.texture_patches(12, seed=1))
    assert p.flatten(1).std(1).min() > 0.02  # textured, not flat
    with pytest.raises(CourseKitError, match="Unknown texture"):
        mf.load_texture("marble")


def test_defects_change_pixels_only_where_drawn():
    p = mf.texture_patches(10, seed=2)
    for kind in mf.DEFECT_KINDS:
        x, m = mf.draw_defects(p, kind, seed=5)
        assert x.shape == p.shape and m.min() >= 0 and m.max() <= 1
        changed = (x - p).abs() > 1e-6
        assert not changed[m == 0].any(), "a pixel outside the mask changed"
        assert changed[m > 0.5].float().mean() > 0.9
        assert ((m > 0).flatten(1).sum(1) >= 4).all()  # every patch got a visible defect
        inside = m > 0.9
        if kind == "scratch":
            assert (x[inside] > p[inside]).all() and x[inside].mean() > 0.8  # bright
        else:
            assert (x[inside] < p[inside]).all() and x[inside].mean() < 0.25  # dark
    with pytest.raises(CourseKitError, match="Unknown defect kind"):
        mf.draw_defects(p, "dent")


def test_defect_dataset_counts_and_determinism():
    data = mf.defect_dataset(30, 4, 3, seed=0)
    assert data.counts() == {"normal": 30, "scratch": 4, "spot": 3} and len(data) == 37
    assert (data.masks[data.y == 0] == 0).all() and (data.masks[data.y > 0].flatten(1).amax(1) > 0.5).all()
    again = mf.defect_dataset(30, 4, 3, seed=0)
    assert torch.equal(data.x, again.x) and torch.equal(data.y, again.y)
    assert not torch.equal(data.x, mf.defect_dataset(30, 4, 3, seed=1).x)
    with pytest.raises(CourseKitError, match="empty"):
        mf.defect_dataset(0, 0, 0)


def test_classification_report_by_hand():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 0, 0, 1, 1, 0, 1, 2])
    r = mf.classification_report(preds, labels)
    assert r["accuracy"] == pytest.approx(5 / 8)
    assert r["recall_normal"] == pytest.approx(0.75) and r["recall_scratch"] == 0.5 and r["recall_spot"] == 0.5
    assert r["balanced_accuracy"] == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert r["defect_recall"] == pytest.approx(3 / 4)  # the spot called a scratch is still flagged
    always_normal = mf.classification_report(torch.zeros(8, dtype=torch.long), labels)
    assert always_normal["balanced_accuracy"] == pytest.approx(1 / 3) and always_normal["defect_recall"] == 0


def test_defect_generator_paints_on_the_background():
    torch.manual_seed(0)
    g = mf.DefectGenerator(channels=8).eval()
    normals = mf.texture_patches(6, seed=3)
    out = mf.generate_defects(g, normals, "spot", seed=1)
    assert out.shape == normals.shape and out.min() >= 0 and out.max() <= 1
    mask, tone = g.paint(torch.randn(6, g.z_dim), torch.ones(6, dtype=torch.long))
    assert mask.shape == tone.shape == (6, 1, 28, 28)
    z, k = torch.randn(6, g.z_dim), torch.zeros(6, dtype=torch.long)
    m, c = g.paint(z, k)
    assert torch.allclose(g(z, k, normals), (1 - m) * normals + m * c)
    assert torch.equal(out, mf.generate_defects(g, normals, "spot", seed=1))


def test_stroke_generator_paints_a_capsule_where_its_placement_noise_says():
    torch.manual_seed(0)
    g = mf.StrokeDefectGenerator().eval()
    z = torch.randn(5, g.z_dim)
    z[:, -3:] = 0.0                      # Phi(0) = 1/2: centre (14, 14), angle pi / 2 (a vertical stroke)
    k = torch.tensor([0, 1, 0, 1, 0])
    stroke = g.stroke(z, k)
    assert torch.allclose(stroke["cy"], torch.full((5,), 14.0)) and torch.allclose(stroke["cx"], torch.full((5,), 14.0))
    assert torch.allclose(stroke["theta"], torch.full((5,), torch.pi / 2))
    assert (stroke["length"] <= 26).all() and (stroke["width"] >= 0.3).all() and (stroke["width"] <= 5).all()
    mask, tone = g.paint(z, k)
    assert mask.shape == tone.shape == (5, 1, 28, 28) and mask.min() >= 0 and (mask <= stroke["opacity"].max()).all()
    # the strongest pixel is on the stroke: within half its length of the centre, along the vertical axis
    for i in range(5):
        row, col = divmod(int(mask[i, 0].argmax()), 28)
        assert abs(col - 14) <= 1 and abs(row - 14) <= stroke["length"][i] / 2 + 1
    normals = mf.texture_patches(5, seed=1)
    assert torch.allclose(g(z, k, normals), (1 - mask) * normals + mask * tone)
    # placement noise moves the stroke: the same shape noise, another place
    z2 = z.clone()
    z2[:, -3] = 2.0
    assert (g.stroke(z2, k)["cy"] > 20).all() and torch.allclose(g.stroke(z2, k)["length"], stroke["length"])


def test_defect_gan_training_runs_and_is_deterministic():
    data = mf.defect_dataset(40, 4, 4, seed=0)
    defects, labels = data.x[data.y > 0], data.y[data.y > 0] - 1
    normals = data.x[data.y == 0]
    g1, h1 = mf.train_defect_gan(defects, labels, normals, steps=4, batch_size=8, channels=8, progress=False)
    g2, h2 = mf.train_defect_gan(defects, labels, normals, steps=4, batch_size=8, channels=8, progress=False)
    assert h1["d_loss"] == h2["d_loss"] and len(h1["mask_area"]) == 4 and not g1.training
    assert isinstance(g1, mf.StrokeDefectGenerator)
    free, _ = mf.train_defect_gan(defects, labels, normals, painter="free", steps=2, batch_size=8, channels=8,
                                  progress=False)
    assert isinstance(free, mf.DefectGenerator)
    with pytest.raises(CourseKitError, match="painter"):
        mf.train_defect_gan(defects, labels, normals, painter="brush", steps=1, progress=False)
    with pytest.raises(CourseKitError, match="defect_labels"):
        mf.train_defect_gan(defects, labels + 5, normals, steps=1, progress=False)


# ====================================================================== seed studies (lecture 06)

@pytest.mark.slow    # 5-15 s of training or sampling: make test-fast skips it
def test_studies_live_stored_and_stale(tmp_path, monkeypatch):
    """A study computed live is what the fast budgets read back; a stored study of another definition is refused."""
    from coursekit.applications import studies

    monkeypatch.setattr(studies, "SEEDS", (0, 1))
    monkeypatch.setattr(studies, "CYCLEGAN", {**studies.CYCLEGAN, "steps": 4, "snapshot_every": 2, "n_train": 64,
                                              "n_eval": 40, "channels": 4})
    monkeypatch.setattr(studies, "DEFECTS", {**studies.DEFECTS, "n_normal": 24, "n_rare": 3, "n_test": 6,
                                             "n_generated": 6, "epochs": 1, "painter_steps": 2})
    monkeypatch.setattr(studies, "STORED", tmp_path / "studies.json")
    monkeypatch.delenv("COURSEKIT_FAST", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    cycle = studies.cyclegan_study(progress=False)
    assert cycle["source"] == "live" and cycle["steps"] == [0, 2, 4] and len(cycle["error"]) == 2
    assert studies.pictures(cycle, "G(a)").shape == (studies.PICTURES, 1, 28, 28)
    defects = studies.defect_study(progress=False)
    assert set(defects["reports"]) == set(mf.AUGMENTATIONS) and len(defects["reports"]["oversampled"]) == 2
    assert set(defects["spread"]) == {"free", "stroke"} and defects["real_spread"]["scratch"] > 0
    studies.write_stored(progress=False)
    monkeypatch.setenv("COURSEKIT_FAST", "1")
    stored = studies.cyclegan_study()
    assert stored["source"].startswith("stored") and stored["error"] == cycle["error"]
    assert torch.allclose(studies.pictures(stored, "a"), studies.pictures(cycle, "a"))
    assert (studies.pictures(stored, "a") - studies.demo_digits()).abs().max() <= 0.5 / 255 + 1e-6   # 8-bit pictures
    assert studies.scores(studies.defect_study()) == studies.scores(defects)
    assert "stored result" in studies.describe_source(stored)
    monkeypatch.setattr(studies, "CYCLEGAN", {**studies.CYCLEGAN, "steps": 6})
    with pytest.raises(CourseKitError, match="stale"):
        studies.cyclegan_study()
    with pytest.raises(CourseKitError, match="no pictures"):
        studies.pictures(stored, "zebra")


def test_change_centres_find_where_a_patch_changed():
    change = torch.zeros(2, 1, 28, 28)
    change[0, 0, 5, 9] = 1.0
    change[1, 0, 20:22, 10] = 0.5
    assert mf.change_centres(change).tolist() == [[5.0, 9.0], [20.5, 10.0]]

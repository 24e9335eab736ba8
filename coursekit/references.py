"""The papers the lectures cite, with links (arXiv or DOI), in one place.

A lecture cites a paper in its text the usual way, "(Madry et al., 2018)" or "Salimans et al.
(2016)"; :func:`cited` finds which entries of :data:`REFERENCES` a text cites (each entry has the
patterns that recognise its citations), and the static site (:mod:`coursekit.site`) lists them, linked,
at the end of each page and on ``references.html``. A new citation in a lecture: add its entry here
(tests/test_site.py checks that every "Name et al., YEAR" in the lectures is known).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REFERENCES", "Reference", "cited", "uncited_mentions"]


@dataclass(frozen=True)
class Reference:
    key: str
    authors: str
    year: int
    title: str
    venue: str
    url: str                      # arXiv abstract page or https://doi.org/...
    patterns: tuple[str, ...]     # regexes that recognise a citation of it in a lecture's text

    def citation(self) -> str:
        return f"{self.authors} ({self.year}). {self.title}. {self.venue}."


def _ref(key, authors, year, title, venue, url, *patterns) -> Reference:
    return Reference(key, authors, year, title, venue, url, tuple(patterns))


_ET = r"\s+et\s+al\.?,?\s*\(?"   # "Name et al., 2018" / "Name et al. (2018)" / "Name et al. 2018"

REFERENCES: tuple[Reference, ...] = (
    _ref("szegedy2014", "C. Szegedy, W. Zaremba, I. Sutskever, J. Bruna, D. Erhan, I. Goodfellow, R. Fergus", 2014,
         "Intriguing properties of neural networks", "ICLR 2014", "https://arxiv.org/abs/1312.6199",
         rf"Szegedy{_ET}2014"),
    _ref("goodfellow2015", "I. Goodfellow, J. Shlens, C. Szegedy", 2015,
         "Explaining and harnessing adversarial examples", "ICLR 2015", "https://arxiv.org/abs/1412.6572",
         rf"Goodfellow{_ET}2015", r"Goodfellow,\s+Shlens\s+and\s+Szegedy"),
    _ref("madry2018", "A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu", 2018,
         "Towards deep learning models resistant to adversarial attacks", "ICLR 2018",
         "https://arxiv.org/abs/1706.06083", rf"Madry{_ET}2018"),
    _ref("sharif2016", "M. Sharif, S. Bhagavatula, L. Bauer, M. K. Reiter", 2016,
         "Accessorize to a crime: real and stealthy attacks on state-of-the-art face recognition", "ACM CCS 2016",
         "https://doi.org/10.1145/2976749.2978392", rf"Sharif{_ET}2016"),
    _ref("papernot2016", "N. Papernot, P. McDaniel, I. Goodfellow", 2016,
         "Transferability in machine learning: from phenomena to black-box attacks using adversarial samples",
         "arXiv:1605.07277", "https://arxiv.org/abs/1605.07277", rf"Papernot{_ET}2016"),
    _ref("metzen2017", "J. H. Metzen, T. Genewein, V. Fischer, B. Bischoff", 2017,
         "On detecting adversarial perturbations", "ICLR 2017", "https://arxiv.org/abs/1702.04267",
         rf"Metzen{_ET}2017"),
    _ref("carlini2017", "N. Carlini, D. Wagner", 2017,
         "Adversarial examples are not easily detected: bypassing ten detection methods", "AISec 2017",
         "https://arxiv.org/abs/1705.07263", r"Carlini\s*(?:&|and)\s*Wagner,?\s*\(?2017"),
    _ref("wong2020", "E. Wong, L. Rice, J. Z. Kolter", 2020, "Fast is better than free: revisiting adversarial training",
         "ICLR 2020", "https://arxiv.org/abs/2001.03994", rf"Wong{_ET}2020"),
    _ref("goodfellow2014", "I. Goodfellow, J. Pouget-Abadie, M. Mirza, B. Xu, D. Warde-Farley, S. Ozair, A. Courville, "
         "Y. Bengio", 2014, "Generative adversarial nets", "NeurIPS 2014", "https://arxiv.org/abs/1406.2661",
         rf"Goodfellow{_ET}2014"),
    _ref("radford2016", "A. Radford, L. Metz, S. Chintala", 2016,
         "Unsupervised representation learning with deep convolutional generative adversarial networks", "ICLR 2016",
         "https://arxiv.org/abs/1511.06434", rf"Radford{_ET}2016"),
    _ref("salimans2016", "T. Salimans, I. Goodfellow, W. Zaremba, V. Cheung, A. Radford, X. Chen", 2016,
         "Improved techniques for training GANs", "NeurIPS 2016", "https://arxiv.org/abs/1606.03498",
         rf"Salimans{_ET}2016"),
    _ref("heusel2017", "M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter", 2017,
         "GANs trained by a two time-scale update rule converge to a local Nash equilibrium", "NeurIPS 2017",
         "https://arxiv.org/abs/1706.08500", rf"Heusel{_ET}2017"),
    _ref("denton2015", "E. Denton, S. Chintala, A. Szlam, R. Fergus", 2015,
         "Deep generative image models using a Laplacian pyramid of adversarial networks", "NeurIPS 2015",
         "https://arxiv.org/abs/1506.05751", rf"Denton{_ET}2015"),
    _ref("isola2017", "P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros", 2017,
         "Image-to-image translation with conditional adversarial networks", "CVPR 2017",
         "https://arxiv.org/abs/1611.07004", rf"Isola{_ET}2017"),
    _ref("zhu2017", "J.-Y. Zhu, T. Park, P. Isola, A. A. Efros", 2017,
         "Unpaired image-to-image translation using cycle-consistent adversarial networks", "ICCV 2017",
         "https://arxiv.org/abs/1703.10593", rf"Zhu{_ET}2017"),
    _ref("ledig2017", "C. Ledig, L. Theis, F. Huszár, J. Caballero, A. Cunningham, A. Acosta, A. Aitken, A. Tejani, "
         "J. Totz, Z. Wang, W. Shi", 2017,
         "Photo-realistic single image super-resolution using a generative adversarial network", "CVPR 2017",
         "https://arxiv.org/abs/1609.04802", rf"Ledig{_ET}2017"),
    _ref("wang2004", "Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli", 2004,
         "Image quality assessment: from error visibility to structural similarity", "IEEE Trans. Image Processing",
         "https://doi.org/10.1109/TIP.2003.819861", rf"Wang{_ET}2004"),
    _ref("kynkaanniemi2019", "T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila", 2019,
         "Improved precision and recall metric for assessing generative models", "NeurIPS 2019",
         "https://arxiv.org/abs/1904.06991", rf"Kynkäänniemi{_ET}2019"),
    _ref("naeem2020", "M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo", 2020,
         "Reliable fidelity and diversity metrics for generative models", "ICML 2020",
         "https://arxiv.org/abs/2002.09797", rf"Naeem{_ET}2020"),
    _ref("wilson1927", "E. B. Wilson", 1927,
         "Probable inference, the law of succession, and statistical inference", "J. American Statistical Association",
         "https://doi.org/10.1080/01621459.1927.10502953", r"Wilson,?\s*\(?1927", r"Wilson (?:score )?interval"),
    _ref("kolter2018", "Z. Kolter, A. Madry", 2018, "Adversarial robustness: theory and practice (NeurIPS tutorial)",
         "adversarial-ml-tutorial.org", "https://adversarial-ml-tutorial.org",
         r"Kolter\s*(?:&|and)\s*Madry"),
    _ref("tramer2017", "F. Tramèr, N. Papernot, I. Goodfellow, D. Boneh, P. McDaniel", 2017,
         "The space of transferable adversarial examples", "arXiv:1704.03453", "https://arxiv.org/abs/1704.03453",
         rf"Tram[eè]r{_ET}2017"),
    _ref("ilyas2019", "A. Ilyas, S. Santurkar, D. Tsipras, L. Engstrom, B. Tran, A. Madry", 2019,
         "Adversarial examples are not bugs, they are features", "NeurIPS 2019", "https://arxiv.org/abs/1905.02175",
         rf"Ilyas{_ET}2019"),
    _ref("athalye2018", "A. Athalye, N. Carlini, D. Wagner", 2018,
         "Obfuscated gradients give a false sense of security: circumventing defenses to adversarial examples",
         "ICML 2018", "https://arxiv.org/abs/1802.00420", rf"Athalye{_ET}2018"),
    _ref("kurakin2017", "A. Kurakin, I. Goodfellow, S. Bengio", 2017, "Adversarial examples in the physical world",
         "ICLR 2017 workshop", "https://arxiv.org/abs/1607.02533", rf"Kurakin{_ET}2017"),
    _ref("mirza2014", "M. Mirza, S. Osindero", 2014, "Conditional generative adversarial nets", "arXiv:1411.1784",
         "https://arxiv.org/abs/1411.1784", r"Mirza\s*(?:&|and)\s*Osindero"),
    _ref("arjovsky2017", "M. Arjovsky, S. Chintala, L. Bottou", 2017, "Wasserstein generative adversarial networks",
         "ICML 2017", "https://arxiv.org/abs/1701.07875", rf"Arjovsky{_ET}2017"),
    _ref("osadchy2017", "M. Osadchy, J. Hernandez-Castro, S. Gibson, O. Dunkelman, D. Pérez-Cabo", 2017,
         "No bot expects the DeepCAPTCHA! Introducing immutable adversarial examples, with applications to CAPTCHA "
         "generation", "IEEE Trans. Information Forensics and Security", "https://doi.org/10.1109/TIFS.2017.2718479",
         rf"Osadchy{_ET}2017"),
    _ref("demontis2019", "A. Demontis, M. Melis, M. Pintor, M. Jagielski, B. Biggio, A. Oprea, C. Nita-Rotaru, F. Roli",
         2019, "Why do adversarial attacks transfer? Explaining transferability of evasion and poisoning attacks",
         "USENIX Security 2019", "https://arxiv.org/abs/1809.02861", rf"Demontis{_ET}2019"),
    _ref("chu2017", "C. Chu, A. Zhmoginov, M. Sandler", 2017, "CycleGAN, a master of steganography",
         "NeurIPS 2017 workshop (arXiv:1712.02950)", "https://arxiv.org/abs/1712.02950", rf"Chu{_ET}2017"),
    _ref("gulrajani2017", "I. Gulrajani, F. Ahmed, M. Arjovsky, V. Dumoulin, A. Courville", 2017,
         "Improved training of Wasserstein GANs", "NeurIPS 2017", "https://arxiv.org/abs/1704.00028",
         rf"Gulrajani{_ET}2017"),
)

# "Name et al., 2017" / "Name et al. (2017)" / "Name and Other (2015)": what a citation looks like.
_CITATION = re.compile(r"\b([A-Z][\w\-äöüèé]+)(?:\s+et\s+al\.?|,\s+[A-Z][\w\-]+\s+and\s+[A-Z][\w\-]+|"
                       r"\s*(?:&|and)\s*[A-Z][\w\-]+),?\s*\(?((?:19|20)\d\d)\b")


def cited(text: str) -> list[Reference]:
    """The references that ``text`` cites, in the order of :data:`REFERENCES`."""
    return [ref for ref in REFERENCES if any(re.search(p, text) for p in ref.patterns)]


def uncited_mentions(text: str) -> list[str]:
    """Citations in ``text`` (``Name et al., YEAR``) that no entry recognises: entries to add."""
    known = cited(text)
    missing = []
    for match in _CITATION.finditer(text):
        name, year = match.group(1), int(match.group(2))
        if not any(name in ref.authors and ref.year == year for ref in known):
            missing.append(match.group(0))
    return missing

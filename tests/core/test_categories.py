import pytest

from dreamdrive.core.categories import (
    CATEGORIES,
    DEFAULT_CATEGORY,
    DETECTION_CLASSES,
    TYPICAL_SIZE,
    detection_class,
    visibility_token,
)


def test_detection_mapping_equals_devkit():
    from nuscenes.eval.detection.utils import category_to_detection_name

    for category in CATEGORIES:
        assert detection_class(category) == category_to_detection_name(category), category


def test_detection_classes_equal_devkit_config():
    from nuscenes.eval.common.config import config_factory

    assert set(DETECTION_CLASSES) == set(config_factory("detection_cvpr_2019").class_names)
    for name in DETECTION_CLASSES:
        assert detection_class(DEFAULT_CATEGORY[name]) == name
        assert len(TYPICAL_SIZE[name]) == 3


@pytest.mark.parametrize("fraction, token", [(0.0, "1"), (0.39, "1"), (0.4, "2"), (0.65, "3"), (0.8, "4"), (1.0, "4")])
def test_visibility_tokens(fraction, token):
    assert visibility_token(fraction) == token

"""nuScenes categories, attributes and visibility levels, and the 10 detection classes.

The mapping from full category names to detection classes is the devkit's
(`nuscenes.eval.detection.utils.category_to_detection_name`), written out here
so that `core` stays free of the devkit; a test checks the two agree.
"""

from __future__ import annotations

from dreamdrive.core.errors import DreamdriveError

# The 23 nuScenes v1.0 categories with the dataset's own descriptions (shortened).
CATEGORIES: dict[str, str] = {
    "animal": "All animals, e.g. cats, rats, dogs, deer, birds.",
    "human.pedestrian.adult": "Adult subcategory.",
    "human.pedestrian.child": "Child subcategory.",
    "human.pedestrian.construction_worker": "Construction worker.",
    "human.pedestrian.personal_mobility": "A small electric or self-propelled vehicle, e.g. skateboard, segway.",
    "human.pedestrian.police_officer": "Police officer.",
    "human.pedestrian.stroller": "Strollers.",
    "human.pedestrian.wheelchair": "Wheelchairs.",
    "movable_object.barrier": "Temporary road barrier placed in the scene in order to redirect traffic.",
    "movable_object.debris": "Movable object that is left on the driveable surface.",
    "movable_object.pushable_pullable": "Object that a pedestrian may push or pull, e.g. dolleys, wheel barrows.",
    "movable_object.trafficcone": "All types of traffic cone.",
    "static_object.bicycle_rack": "Area or device intended to park or secure the bicycles in a row.",
    "vehicle.bicycle": "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds.",
    "vehicle.bus.bendy": "Bendy bus subcategory.",
    "vehicle.bus.rigid": "Rigid bus subcategory.",
    "vehicle.car": "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, wagons, vans, SUVs.",
    "vehicle.construction": "Vehicles primarily designed for construction, e.g. excavators, dump trucks.",
    "vehicle.emergency.ambulance": "All types of ambulances.",
    "vehicle.emergency.police": "All types of police vehicles.",
    "vehicle.motorcycle": "Gasoline or electric powered 2-wheeled vehicle designed to move rapidly on the road.",
    "vehicle.trailer": "Any vehicle trailer, both for trucks, cars and bikes.",
    "vehicle.truck": "Vehicles primarily designed to haul cargo including pick-ups, lorrys, trucks and semi-tractors.",
}

# As the devkit maps them; everything else has no detection class.
DETECTION_MAPPING: dict[str, str] = {
    "movable_object.barrier": "barrier",
    "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.car": "car",
    "vehicle.construction": "construction_vehicle",
    "vehicle.motorcycle": "motorcycle",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "movable_object.trafficcone": "traffic_cone",
    "vehicle.trailer": "trailer",
    "vehicle.truck": "truck",
}

DETECTION_CLASSES: tuple[str, ...] = (
    "car",
    "truck",
    "bus",
    "trailer",
    "construction_vehicle",
    "pedestrian",
    "motorcycle",
    "bicycle",
    "traffic_cone",
    "barrier",
)

# The category a generator uses when asked for a detection class.
DEFAULT_CATEGORY: dict[str, str] = {
    "car": "vehicle.car",
    "truck": "vehicle.truck",
    "bus": "vehicle.bus.rigid",
    "trailer": "vehicle.trailer",
    "construction_vehicle": "vehicle.construction",
    "pedestrian": "human.pedestrian.adult",
    "motorcycle": "vehicle.motorcycle",
    "bicycle": "vehicle.bicycle",
    "traffic_cone": "movable_object.trafficcone",
    "barrier": "movable_object.barrier",
}

# Typical (width, length, height) in metres, near the nuScenes per-class means.
TYPICAL_SIZE: dict[str, tuple[float, float, float]] = {
    "car": (1.95, 4.62, 1.73),
    "truck": (2.51, 6.93, 2.84),
    "bus": (2.94, 11.19, 3.47),
    "trailer": (2.90, 12.28, 3.87),
    "construction_vehicle": (2.73, 6.37, 3.19),
    "pedestrian": (0.67, 0.73, 1.77),
    "motorcycle": (0.77, 2.11, 1.47),
    "bicycle": (0.60, 1.70, 1.28),
    "traffic_cone": (0.41, 0.41, 1.07),
    "barrier": (2.53, 0.50, 0.98),
}

ATTRIBUTES: dict[str, str] = {
    "vehicle.moving": "Vehicle is moving.",
    "vehicle.stopped": "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.",
    "vehicle.parked": "Vehicle is stationary (usually for longer duration) with no immediate intent to move.",
    "cycle.with_rider": "There is a rider on the bicycle or motorcycle.",
    "cycle.without_rider": "There is NO rider on the bicycle or motorcycle.",
    "pedestrian.sitting_lying_down": "The human is sitting or lying down.",
    "pedestrian.standing": "The human is standing.",
    "pedestrian.moving": "The human is moving.",
}

# nuScenes visibility tokens '1'..'4': fraction of the object visible in all six images.
VISIBILITY_LEVELS: dict[str, tuple[str, str, float]] = {
    "1": ("v0-40", "visibility of whole object is between 0 and 40%", 0.0),
    "2": ("v40-60", "visibility of whole object is between 40 and 60%", 0.4),
    "3": ("v60-80", "visibility of whole object is between 60 and 80%", 0.6),
    "4": ("v80-100", "visibility of whole object is between 80 and 100%", 0.8),
}


def detection_class(category: str) -> str | None:
    """The detection class of a full nuScenes category name, or None (as the devkit maps it)."""
    return DETECTION_MAPPING.get(category)


def check_category(category: str) -> str:
    """Return `category` if it is a nuScenes category name, else raise naming the valid ones."""
    if category not in CATEGORIES:
        raise DreamdriveError(
            f"unknown category {category!r}; use a nuScenes category name such as 'vehicle.car' "
            f"(one of: {', '.join(sorted(CATEGORIES))})."
        )
    return category


def attribute_applies(attribute: str, category: str) -> bool:
    """Whether nuScenes would attach `attribute` to an object of `category`."""
    if attribute.startswith("pedestrian."):
        return category.startswith("human.pedestrian")
    if attribute.startswith("cycle."):
        return category in ("vehicle.bicycle", "vehicle.motorcycle")
    if attribute.startswith("vehicle."):
        return category.startswith("vehicle.")
    return False


def visibility_token(fraction: float) -> str:
    """The nuScenes visibility token ('1'..'4') of a visible fraction in [0, 1]."""
    token = "1"
    for key, (_, _, lower) in VISIBILITY_LEVELS.items():
        if fraction >= lower:
            token = key
    return token

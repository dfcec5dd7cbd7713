"""Reading the devkit's map expansion format into an HDMap, on a tiny hand-built map."""

import json

import numpy as np
import pytest

from dreamdrive.nusc.mapexp import hdmap_from_expansion


def build_expansion(root):
    nodes, polygons, lines = [], [], []

    def node(x, y):
        nodes.append({"token": f"n{len(nodes)}", "x": x, "y": y})
        return nodes[-1]["token"]

    def polygon(points):
        polygons.append({"token": f"p{len(polygons)}", "exterior_node_tokens": [node(*p) for p in points], "holes": []})
        return polygons[-1]["token"]

    def line(points):
        lines.append({"token": f"l{len(lines)}", "node_tokens": [node(*p) for p in points]})
        return lines[-1]["token"]

    road = polygon([(0, 0), (40, 0), (40, 7), (0, 7)])
    lane_a = polygon([(0, 0), (20, 0), (20, 3.5), (0, 3.5)])
    lane_b = polygon([(20, 0), (40, 0), (40, 3.5), (20, 3.5)])
    crossing = polygon([(18, 0), (22, 0), (22, 7), (18, 7)])

    def straight(x0, x1, y):
        return [
            {
                "start_pose": [x0, y, 0.0],
                "end_pose": [x1, y, 0.0],
                "shape": "LSR",
                "radius": 999.0,
                "segment_length": [0.0, float(x1 - x0), 0.0],
            }
        ]

    def lane(token, poly):
        return {
            "token": token,
            "polygon_token": poly,
            "lane_type": "CAR",
            "from_edge_line_token": "",
            "to_edge_line_token": "",
            "left_lane_divider_segments": [],
            "right_lane_divider_segments": [],
        }

    data = {
        "version": "1.3",
        "canvas_edge": [100.0, 100.0],
        "node": nodes,
        "polygon": polygons,
        "line": lines,
        "drivable_area": [{"token": "d0", "polygon_tokens": [road]}],
        "road_segment": [{"token": "r0", "polygon_token": road, "is_intersection": False, "drivable_area_token": "d0"}],
        "road_block": [],
        "walkway": [],
        "stop_line": [],
        "carpark_area": [],
        "traffic_light": [],
        "lane": [lane("A", lane_a), lane("B", lane_b)],
        "ped_crossing": [{"token": "c0", "polygon_token": crossing, "road_segment_token": "r0"}],
        "lane_divider": [{"token": "ld0", "line_token": line([(0, 3.5), (40, 3.5)]), "lane_divider_segments": []}],
        "road_divider": [],
        "lane_connector": [],
        "arcline_path_3": {"A": straight(0, 20, 1.75), "B": straight(20, 40, 1.75)},
        "connectivity": {"A": {"incoming": [], "outgoing": ["B"]}, "B": {"incoming": ["A"], "outgoing": []}},
    }
    folder = root / "maps" / "expansion"
    folder.mkdir(parents=True)
    (folder / "boston-seaport.json").write_text(json.dumps(data))


def test_expansion_to_hdmap(tmp_path):
    build_expansion(tmp_path)
    hdmap = hdmap_from_expansion(tmp_path, "boston-seaport")
    assert hdmap.name == "boston-seaport"
    assert len(hdmap.lane_dividers) == 1 and np.allclose(hdmap.lane_dividers[0], [[0, 3.5], [40, 3.5]])
    assert len(hdmap.ped_crossings) == 1
    assert len(hdmap.drivable_areas) == 1
    # the road boundary is the outline of the road: a 40 x 7 rectangle
    (boundary,) = hdmap.road_boundaries
    assert boundary[:, 0].min() == pytest.approx(0) and boundary[:, 0].max() == pytest.approx(40)
    assert boundary[:, 1].max() == pytest.approx(7)
    assert hdmap.lanes["A"].successors == ("B",)
    centre = hdmap.lanes["A"].centerline
    assert np.allclose(centre[:, 1], 1.75, atol=1e-6) and centre[0, 0] == pytest.approx(0, abs=1e-6)
    assert centre[-1, 0] == pytest.approx(20, abs=0.6)

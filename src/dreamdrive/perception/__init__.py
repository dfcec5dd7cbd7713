"""Downstream perception: a multi-view camera 3D detector (BEV, CenterPoint head), its training, a tracker."""

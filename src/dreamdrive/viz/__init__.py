"""Pictures: BEV plots, six-view grids with projected boxes and map, clip videos."""

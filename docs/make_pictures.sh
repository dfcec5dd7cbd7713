#!/usr/bin/env bash
# Regenerates the pictures under docs/images from the embedded procedural world.
#   bash docs/make_pictures.sh        (about two minutes on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
DD=.venv/bin/dreamdrive
OUT=outputs/docs-world
$DD world build --out "$OUT" --scenes 3 --seconds 2 --seed 0 \
    --time-of-day day,night,day --weather clear,clear,rain --overwrite
for pair in 0000:day 0001:night 0002:rain; do
    scene=proc-000-${pair%%:*}; name=${pair##*:}
    $DD show "$OUT" --scene "$scene" --out "$OUT/pictures" --frame 12 --clean
    cp "$OUT/pictures/${scene}_clean.png" "docs/images/world_${name}.png"
    cp "$OUT/pictures/${scene}_grid.png" "docs/images/world_${name}_boxes.png"
done
cp "$OUT/pictures/proc-000-0000_bev.png" docs/images/world_bev.png
$DD world map --seed 0 --out docs/images/town.png
$DD assets show car-01 --out docs/images/asset_car.png --library "$OUT/assets"
$DD assets show motorcycle-00 --out docs/images/asset_motorcycle.png --library "$OUT/assets"
# naive insertion (before/after), then all conditions of one edited frame: layouts, the five guidance maps
$DD insert --data "$OUT" --out "$OUT-inserted" --class car,truck --auto 2 --distance near --scenes proc-000-0000 \
    --library "$OUT/assets" --overwrite
cp "$OUT-inserted/previews/proc-000-0000-naive.png" docs/images/insert_before_after.png
$DD conditions --data "$OUT-inserted" --scene proc-000-0000-naive --out "$OUT/conditions-inserted" --frame 12 \
    --library "$OUT/assets"
for name in map boxes depth normal edges object mask; do
    cp "$OUT/conditions-inserted/proc-000-0000-naive_012_${name}.png" "docs/images/conditions_${name}.png"
done
# a scenario through a junction: a left turn and a merge from the side road (six views at 5 s, and the BEV)
$DD scenario "the white car ahead turns left at the intersection, and a truck merges from the side road on the right" \
    --out "$OUT/junction"
name=$(.venv/bin/python -c "import json; print(json.load(open('$OUT/junction/scenario.json'))['name'])")
$DD show "$OUT/junction/dataset" --scene "$name" --out "$OUT/junction/pictures" --frame 60
cp "$OUT/junction/pictures/${name}_grid.png" docs/images/scenario_junction_grid.png
cp "$OUT/junction/bev.png" docs/images/scenario_junction_bev.png

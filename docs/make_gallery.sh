#!/usr/bin/env bash
# Regenerates the text-to-video gallery of docs/generate.md: four prompts through `dreamdrive generate` with the
# shipped models, 4 s each (17 model frames, 3 windows, 30 Euler steps).
#   bash docs/make_gallery.sh        (about five minutes on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
DD=.venv/bin/dreamdrive
OUT=outputs/gallery
gallery() {  # NAME PROMPT [generate options...]
    local name=$1 prompt=$2
    shift 2
    $DD generate "$prompt" --out "$OUT/$name" --seconds 4 "$@"
    .venv/bin/python -c "import cv2, sys; cv2.imwrite(sys.argv[2], cv2.imread(sys.argv[1]), [cv2.IMWRITE_JPEG_QUALITY, 85])" \
        "$OUT/$name/frames.png" "docs/images/generate_${name}_frames.jpg"
    cp "$OUT/$name/bev.png" "docs/images/generate_${name}_bev.png"
}
gallery cut_in "A red truck cuts in from the left on a rainy night"
gallery dash_out "A pedestrian dashes out from behind a parked car"
gallery hard_brake "The bus ahead brakes hard in the fog" --map road --mask first-frame
gallery oncoming "An oncoming truck at dusk" --map town:3 --mask first-frame
